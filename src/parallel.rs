//! Work spread over the cores: worker threads take chunks from one queue, so
//! a core that drew cheap targets (idle processes) takes more of them, and a
//! core that drew a large one (a browser with thousands of mappings) does not
//! hold the others up. Results come back in the chunks' order.

use std::sync::{Mutex, OnceLock};

/// The cores this process may run on, looked up once: the standard library
/// reads the affinity mask and the cgroup CPU quota files on every call,
/// and a cycle of `watch --all` asks each time.
pub(crate) fn cores() -> usize {
    static CORES: OnceLock<usize> = OnceLock::new();
    *CORES.get_or_init(|| std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get))
}

/// Targets in one chunk: small enough to balance, large enough that the
/// queue's lock is taken rarely.
pub(crate) const CHUNK: usize = 8;

/// Runs `work` on every chunk, on `workers` threads taking chunks from a
/// shared queue: the caller's thread and `workers - 1` scoped threads (a
/// thread that cannot be started leaves its share to the others, so this
/// never fails for want of threads). Returns one result per chunk, in the
/// chunks' order; `None` for a chunk whose work panicked (the caller says
/// what was lost).
#[inline(never)]
pub(crate) fn on_workers<C: Send, R: Send>(
    chunks: Vec<C>,
    workers: usize,
    work: impl Fn(C) -> R + Sync,
) -> Vec<Option<R>> {
    let n = chunks.len();
    let queue = Mutex::new(chunks.into_iter().enumerate());
    let drain = || {
        let mut done = Vec::new();
        loop {
            // Nothing panics while the lock is held (the iterator only hands
            // out chunks), so it is never poisoned.
            let next = match queue.lock() {
                Ok(mut q) => q.next(),
                Err(poisoned) => poisoned.into_inner().next(),
            };
            let Some((i, chunk)) = next else { break };
            if let Ok(r) = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| work(chunk))) {
                done.push((i, r));
            }
        }
        done
    };
    let done: Vec<(usize, R)> = std::thread::scope(|scope| {
        let helpers: Vec<_> = (1..workers.clamp(1, n.max(1)))
            .filter_map(|_| std::thread::Builder::new().spawn_scoped(scope, drain).ok())
            .collect();
        let mut done = drain();
        done.extend(helpers.into_iter().filter_map(|h| h.join().ok()).flatten());
        done
    });
    let mut out: Vec<Option<R>> = (0..n).map(|_| None).collect();
    for (i, r) in done {
        if let Some(slot) = out.get_mut(i) {
            *slot = Some(r);
        }
    }
    out
}

/// `f` of each item, on `workers` threads as [`on_workers`] runs chunks of
/// them: one result per item, in order; `None` for each item of a chunk
/// whose work panicked.
pub(crate) fn each<T: Sync, R: Send>(items: &[T], workers: usize, f: impl Fn(&T) -> R + Sync) -> Vec<Option<R>> {
    let chunks: Vec<&[T]> = items.chunks(CHUNK).collect();
    let parts = on_workers(chunks.clone(), workers, |part: &[T]| part.iter().map(&f).collect::<Vec<R>>());
    let mut out = Vec::with_capacity(items.len());
    for (chunk, part) in chunks.into_iter().zip(parts) {
        match part {
            Some(results) => out.extend(results.into_iter().map(Some)),
            None => out.extend(chunk.iter().map(|_| None)),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn results_come_back_in_order_whatever_the_cost_of_each_chunk() {
        let chunks: Vec<Vec<u64>> = (0..50u64).map(|i| vec![i; usize::try_from(i % 7).unwrap_or(0) + 1]).collect();
        let expect: Vec<Option<u64>> = chunks.iter().map(|c| Some(c.iter().sum())).collect();
        for workers in [1, 2, 3, 8, 100] {
            let got = on_workers(chunks.clone(), workers, |c: Vec<u64>| {
                if c.first() == Some(&3) {
                    std::thread::sleep(std::time::Duration::from_millis(5));
                }
                c.iter().sum::<u64>()
            });
            assert_eq!(got, expect, "{workers} workers");
        }
        assert!(on_workers(Vec::<u8>::new(), 2, |c| c).is_empty());
    }

    #[test]
    fn each_gives_one_result_per_item_and_none_for_a_panicked_chunk() {
        let items: Vec<u32> = (0..50).collect();
        let got = each(&items, 2, |&i| {
            assert!(i != 17, "item 17 fails");
            i * 3
        });
        assert_eq!(got.len(), 50);
        // 17 is in the third chunk of 8 (16..24): all of it is lost, nothing else.
        for (i, r) in got.iter().enumerate() {
            let i = u32::try_from(i).unwrap_or(0);
            assert_eq!(*r, if (16..24).contains(&i) { None } else { Some(i * 3) }, "item {i}");
        }
    }

    #[test]
    fn a_panicking_chunk_is_none_and_the_others_are_done() {
        let got = on_workers((0..20u32).collect(), 2, |c| {
            assert!(c != 7, "chunk 7 fails");
            c * 2
        });
        assert_eq!(got.iter().filter(|r| r.is_none()).count(), 1);
        assert_eq!(got.get(7), Some(&None));
        assert_eq!(got.get(8), Some(&Some(16)));
    }
}
