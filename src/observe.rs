//! Reading a target's subsystems into canonical forms: which files each
//! subsystem needs, read once per check and fed to the pure canonicalizers.
//!
//! Each thread's `status` is read once for both `seccomp` and `credentials`.
//! A file that cannot be read makes its subsystem *unobservable* (permission
//! denied, absent on this kernel) or fails the whole observation (the process
//! is gone); it is never read as empty.

use std::fmt::Write as _;

use crate::canon::{Canon, cgroup, maps, status};
use crate::{Error, Source, Subsystem};

/// The result of observing one subsystem.
#[derive(Debug, Clone)]
pub(crate) enum Slot {
    /// Its canonical form.
    Observed(Canon),
    /// Why it could not be read.
    Unobservable(String),
}

/// Buffers reused from one observation to the next.
#[derive(Debug, Default)]
pub(crate) struct Observer {
    buf: Vec<u8>,
    tids: Vec<u32>,
    rel: String,
    slots: Vec<(Subsystem, Slot)>,
    /// A one-shot fault to inject into the next observation (`fdir selftest`).
    fault: Option<u64>,
}

/// The reason a subsystem is unobservable, if the error is of that kind
/// (rather than one that fails the whole check).
fn unobservable_reason(e: &Error) -> Option<String> {
    match e {
        Error::PermissionDenied { .. } => Some(e.to_string()),
        Error::NotFound { path } => Some(format!("{} does not exist on this kernel", path.display())),
        _ => None,
    }
}

/// Which per-thread file a pass reads.
#[derive(Clone, Copy)]
enum ThreadFile {
    Status,
    Cgroup,
}

impl Observer {
    pub(crate) fn new() -> Observer {
        Observer::default()
    }

    /// Flips a bit in one canonical form of the next observation.
    pub(crate) fn inject(&mut self, seed: u64) {
        self.fault = Some(seed);
    }

    /// The results of the last observation, in subsystem order.
    pub(crate) fn slots(&self) -> &[(Subsystem, Slot)] {
        &self.slots
    }

    /// The results of the last observation, to finish digests in place.
    pub(crate) fn slots_mut(&mut self) -> &mut [(Subsystem, Slot)] {
        &mut self.slots
    }

    /// Takes the canonical form of the previous observation of `sub`, to reuse
    /// its buffers.
    fn take_canon(&mut self, sub: Subsystem) -> Canon {
        let mut c = self
            .slots
            .iter_mut()
            .find(|(s, _)| *s == sub)
            .and_then(|(_, slot)| match slot {
                Slot::Observed(c) => Some(std::mem::take(c)),
                Slot::Unobservable(_) => None,
            })
            .unwrap_or_default();
        c.clear();
        c
    }

    /// Observes `subsystems` of `src`, replacing the previous results.
    pub(crate) fn observe<S: Source + ?Sized>(&mut self, src: &S, subsystems: &[Subsystem]) -> Result<(), Error> {
        let mut wanted = subsystems.to_vec();
        wanted.sort_unstable();
        wanted.dedup();
        let mut canons: Vec<(Subsystem, Canon)> = wanted.iter().map(|&s| (s, self.take_canon(s))).collect();
        let mut outcome: Vec<(Subsystem, Option<String>)> = Vec::with_capacity(wanted.len());
        let has = |s| wanted.contains(&s);

        if let Some((_, canon)) = canons.iter_mut().find(|(s, _)| *s == Subsystem::MemoryMaps) {
            let r = self.maps(src, canon);
            outcome.push((Subsystem::MemoryMaps, settle(r)?));
        }
        if has(Subsystem::Seccomp) || has(Subsystem::Credentials) || has(Subsystem::Cgroups) {
            src.threads(&mut self.tids)?;
        }
        if has(Subsystem::Seccomp) || has(Subsystem::Credentials) {
            let r = self.per_thread(src, ThreadFile::Status, &mut canons);
            let reason = settle(r)?;
            for s in [Subsystem::Seccomp, Subsystem::Credentials] {
                if has(s) {
                    outcome.push((s, reason.clone()));
                }
            }
        }
        if has(Subsystem::Cgroups) {
            let r = self.per_thread(src, ThreadFile::Cgroup, &mut canons);
            outcome.push((Subsystem::Cgroups, settle(r)?));
        }

        self.slots.clear();
        for (sub, mut canon) in canons {
            let reason = outcome.iter().find(|(s, _)| *s == sub).map(|(_, r)| r.clone());
            let slot = match reason {
                Some(None) => {
                    canon.finish();
                    Slot::Observed(canon)
                }
                Some(Some(reason)) => Slot::Unobservable(reason),
                None => return Err(Error::Bug(format!("{sub} was asked for but not observed"))),
            };
            self.slots.push((sub, slot));
        }
        if let Some(seed) = self.fault.take() {
            let observed: Vec<usize> =
                (0..self.slots.len()).filter(|&i| matches!(self.slots.get(i), Some((_, Slot::Observed(_))))).collect();
            let pick = usize::try_from(seed % u64::try_from(observed.len().max(1)).unwrap_or(1)).unwrap_or(0);
            if let Some(&i) = observed.get(pick)
                && let Some((_, Slot::Observed(c))) = self.slots.get_mut(i)
            {
                c.corrupt(seed.rotate_left(17));
            }
        }
        Ok(())
    }

    fn maps<S: Source + ?Sized>(&mut self, src: &S, canon: &mut Canon) -> Result<(), Error> {
        src.read("maps", &mut self.buf)?;
        maps::canonicalize(&self.buf, canon).map_err(|e| {
            if self.buf.is_empty() && !src.alive() {
                return gone(src);
            }
            Error::Parse { path: src.path_of("maps"), message: e.to_string() }
        })
    }

    /// Reads one file of every thread (listed in `self.tids`) into the
    /// canonical forms that need it. A thread that exits meanwhile is skipped.
    fn per_thread<S: Source + ?Sized>(
        &mut self,
        src: &S,
        file: ThreadFile,
        canons: &mut [(Subsystem, Canon)],
    ) -> Result<(), Error> {
        let name = match file {
            ThreadFile::Status => "status",
            ThreadFile::Cgroup => "cgroup",
        };
        let mut read = 0usize;
        let mut absent: Option<Error> = None;
        for i in 0..self.tids.len() {
            let Some(&tid) = self.tids.get(i) else { break };
            self.rel.clear();
            let _ = write!(self.rel, "task/{tid}/{name}");
            match src.read(&self.rel, &mut self.buf) {
                Ok(()) => read += 1,
                // The thread has exited since it was listed (or the file does
                // not exist: decided below, once every thread has been tried).
                Err(e @ Error::NotFound { .. }) => {
                    absent = Some(e);
                    continue;
                }
                Err(e) => return Err(e),
            }
            let parse = |e: String| Error::Parse { path: src.path_of(&self.rel), message: e };
            for (sub, canon) in canons.iter_mut() {
                match (file, *sub) {
                    (ThreadFile::Status, Subsystem::Seccomp) => {
                        status::canonicalize_thread(&self.buf, status::SECCOMP_FIELDS, canon)
                            .map_err(|e| parse(e.to_string()))?;
                    }
                    (ThreadFile::Status, Subsystem::Credentials) => {
                        status::canonicalize_thread(&self.buf, status::CREDENTIAL_FIELDS, canon)
                            .map_err(|e| parse(e.to_string()))?;
                    }
                    (ThreadFile::Cgroup, Subsystem::Cgroups) => {
                        cgroup::canonicalize_thread(&self.buf, canon).map_err(|e| parse(e.to_string()))?;
                    }
                    _ => {}
                }
            }
        }
        if read > 0 {
            return Ok(());
        }
        if !src.alive() {
            return Err(gone(src));
        }
        Err(absent.unwrap_or_else(|| Error::Parse { path: src.path_of("task"), message: "no threads listed".into() }))
    }
}

/// Splits a subsystem's result: `Ok(None)` observed, `Ok(Some(reason))`
/// unobservable, `Err` fails the whole observation.
fn settle(r: Result<(), Error>) -> Result<Option<String>, Error> {
    match r {
        Ok(()) => Ok(None),
        Err(e) => unobservable_reason(&e).map(Some).ok_or(e),
    }
}

fn gone<S: Source + ?Sized>(src: &S) -> Error {
    match src.target() {
        Ok(t) => match t.pid() {
            Some(pid) => Error::Gone { pid },
            None => Error::Bug("a mock source reported itself dead".into()),
        },
        Err(e) => e,
    }
}
