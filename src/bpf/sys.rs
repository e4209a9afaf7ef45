//! bpf(2), and the mappings of the ring buffer and of the kernel's BTF:
//! every `unsafe` of the eBPF source is here, each a system call or a read
//! of memory the kernel mapped for us.

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};

use super::asm::Insn;

const BPF_MAP_CREATE: i32 = 0;
const BPF_MAP_LOOKUP_ELEM: i32 = 1;
const BPF_MAP_UPDATE_ELEM: i32 = 2;
const BPF_PROG_LOAD: i32 = 5;
const BPF_PROG_TEST_RUN: i32 = 10;
const BPF_RAW_TRACEPOINT_OPEN: i32 = 17;
const BPF_LINK_CREATE: i32 = 28;
const BPF_ITER_CREATE: i32 = 33;

/// `BPF_MAP_TYPE_*`.
pub const MAP_ARRAY: u32 = 2;
/// `BPF_MAP_TYPE_LRU_HASH`.
pub const MAP_LRU_HASH: u32 = 9;
/// `BPF_MAP_TYPE_RINGBUF`.
pub const MAP_RINGBUF: u32 = 27;
/// `BPF_PROG_TYPE_RAW_TRACEPOINT`.
pub const PROG_RAW_TRACEPOINT: u32 = 17;
/// `BPF_PROG_TYPE_TRACING`.
pub const PROG_TRACING: u32 = 26;
/// `BPF_PROG_TYPE_SYSCALL`: a program run by `BPF_PROG_TEST_RUN` on a
/// context the caller passes and gets back ([`prog_run`]).
pub const PROG_SYSCALL: u32 = 31;
/// `BPF_F_SLEEPABLE`: a program that may sleep (every `BPF_PROG_TYPE_SYSCALL`).
pub const F_SLEEPABLE: u32 = 1 << 4;
/// `BPF_TRACE_FEXIT`.
pub const ATTACH_FEXIT: u32 = 25;
/// `BPF_TRACE_ITER`.
pub const ATTACH_ITER: u32 = 28;

#[repr(C)]
#[derive(Default)]
struct MapCreate {
    map_type: u32,
    key_size: u32,
    value_size: u32,
    max_entries: u32,
    map_flags: u32,
    inner_map_fd: u32,
    numa_node: u32,
    map_name: [u8; 16],
}

#[repr(C)]
#[derive(Default)]
struct ProgLoad {
    prog_type: u32,
    insn_cnt: u32,
    insns: u64,
    license: u64,
    log_level: u32,
    log_size: u32,
    log_buf: u64,
    kern_version: u32,
    prog_flags: u32,
    prog_name: [u8; 16],
    prog_ifindex: u32,
    expected_attach_type: u32,
    prog_btf_fd: u32,
    func_info_rec_size: u32,
    func_info: u64,
    func_info_cnt: u32,
    line_info_rec_size: u32,
    line_info: u64,
    line_info_cnt: u32,
    attach_btf_id: u32,
    attach_btf_obj_fd: u32,
    pad: u32,
}

#[repr(C)]
#[derive(Default)]
struct Elem {
    map_fd: u32,
    pad: u32,
    key: u64,
    value: u64,
    flags: u64,
}

#[repr(C)]
#[derive(Default)]
struct RawTpOpen {
    name: u64,
    prog_fd: u32,
    pad: u32,
}

#[repr(C)]
#[derive(Default)]
struct LinkCreate {
    prog_fd: u32,
    target_fd: u32,
    attach_type: u32,
    flags: u32,
    iter_info: u64,
    iter_info_len: u32,
    pad: u32,
}

/// `union bpf_iter_link_info`, its task member: which tasks a task
/// iterator walks (all zero: every task).
#[repr(C)]
#[derive(Default)]
struct IterTask {
    tid: u32,
    pid: u32,
    pid_fd: u32,
    /// The union is 16 bytes (its cgroup member).
    pad: u32,
}

/// `bpf_attr.test`, of `BPF_PROG_TEST_RUN`.
#[repr(C)]
#[derive(Default)]
struct TestRun {
    prog_fd: u32,
    retval: u32,
    data_size_in: u32,
    data_size_out: u32,
    data_in: u64,
    data_out: u64,
    repeat: u32,
    duration: u32,
    ctx_size_in: u32,
    ctx_size_out: u32,
    ctx_in: u64,
    ctx_out: u64,
    flags: u32,
    cpu: u32,
    batch_size: u32,
    pad: u32,
}

#[repr(C)]
#[derive(Default)]
struct IterCreate {
    link_fd: u32,
    flags: u32,
}

fn bpf<T>(cmd: i32, attr: &mut T) -> io::Result<i64> {
    let size = std::mem::size_of::<T>();
    // SAFETY: `attr` is a live, fully initialized `#[repr(C)]` prefix of
    // `union bpf_attr` for `cmd`, `size` bytes long; the kernel reads (and
    // for some commands writes) at most `size` bytes of it, and every
    // pointer inside it points to memory that outlives the call.
    let r = unsafe { libc::syscall(libc::SYS_bpf, cmd, std::ptr::from_mut(attr), size) };
    if r < 0 { Err(io::Error::last_os_error()) } else { Ok(r) }
}

fn fd_of(r: i64) -> io::Result<OwnedFd> {
    let raw = i32::try_from(r).map_err(|_| io::Error::other("bpf returned no descriptor"))?;
    // SAFETY: a successful bpf(2) command that creates an object returns a
    // new descriptor that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(raw) })
}

fn name16(name: &str) -> [u8; 16] {
    let mut out = [0u8; 16];
    for (o, b) in out.iter_mut().take(15).zip(name.bytes()) {
        *o = b;
    }
    out
}

/// `BPF_MAP_CREATE`.
pub fn map_create(map_type: u32, key_size: u32, value_size: u32, max_entries: u32, name: &str) -> io::Result<OwnedFd> {
    let mut attr =
        MapCreate { map_type, key_size, value_size, max_entries, map_name: name16(name), ..Default::default() };
    fd_of(bpf(BPF_MAP_CREATE, &mut attr)?)
}

/// `BPF_F_MMAPABLE`: an array map whose values a process maps.
const F_MMAPABLE: u32 = 1 << 10;

/// `BPF_MAP_CREATE` of an array of `entries` values of `value_size` bytes
/// (a multiple of 8: the values lie end to end) that this process reads by
/// mapping them ([`MappedValue`]).
pub fn map_create_mmapable(value_size: u32, entries: u32, name: &str) -> io::Result<OwnedFd> {
    let mut attr = MapCreate {
        map_type: MAP_ARRAY,
        key_size: 4,
        value_size,
        max_entries: entries,
        map_flags: F_MMAPABLE,
        map_name: name16(name),
        ..Default::default()
    };
    fd_of(bpf(BPF_MAP_CREATE, &mut attr)?)
}

/// The values of an array map made by [`map_create_mmapable`], mapped
/// read-only and shared: what a program writes there is read here without
/// a system call.
pub struct MappedValue {
    at: std::ptr::NonNull<libc::c_void>,
    len: usize,
}

// SAFETY: the mapping is plain shared memory, valid until drop; reads of it
// through `&self` are byte copies (`read`), safe from any thread.
unsafe impl Send for MappedValue {}
// SAFETY: as above; nothing is written through this mapping.
unsafe impl Sync for MappedValue {}

impl MappedValue {
    /// Maps `len` bytes of the values of `map` from byte `offset` (a
    /// multiple of the page size). The kernel maps every page of the range
    /// at once (they count in the resident set from then on), so a range
    /// is mapped only where it is read.
    pub fn of_at(map: BorrowedFd<'_>, offset: usize, len: usize) -> io::Result<MappedValue> {
        let offset = libc::off_t::try_from(offset).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
        if len == 0 {
            return Err(io::Error::from(io::ErrorKind::InvalidInput));
        }
        // SAFETY: a new shared read-only mapping of the map's value at an
        // address the kernel picks; nothing else refers to that range.
        let at = unsafe {
            libc::mmap(std::ptr::null_mut(), len, libc::PROT_READ, libc::MAP_SHARED, map.as_raw_fd(), offset)
        };
        if at == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        let at = std::ptr::NonNull::new(at).ok_or_else(|| io::Error::from(io::ErrorKind::InvalidData))?;
        Ok(MappedValue { at, len })
    }

    /// Copies the bytes `[from, from + out.len())` of the value into `out`;
    /// `false` past its end. The caller keeps programs from writing the
    /// value meanwhile.
    pub fn read(&self, from: usize, out: &mut [u8]) -> bool {
        let Some(end) = from.checked_add(out.len()) else { return false };
        if end > self.len {
            return false;
        }
        // SAFETY: `[from, end)` lies within the `len` bytes mapped at `at`
        // until this value is dropped; `out` is a distinct, writable slice of
        // this process's memory of that length.
        unsafe {
            std::ptr::copy_nonoverlapping(self.at.as_ptr().cast::<u8>().add(from), out.as_mut_ptr(), out.len());
        }
        true
    }
}

impl Drop for MappedValue {
    fn drop(&mut self) {
        // SAFETY: the mapping made in `of` with this length; no borrow of it
        // outlives this value.
        unsafe { libc::munmap(self.at.as_ptr(), self.len) };
    }
}

impl std::fmt::Debug for MappedValue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MappedValue").field("len", &self.len).finish()
    }
}

/// `BPF_MAP_LOOKUP_ELEM` of a u32 key and u64 value.
pub fn lookup_u64(map: BorrowedFd<'_>, key: u32) -> io::Result<u64> {
    let mut value = 0u64;
    let mut attr = Elem {
        map_fd: u32::try_from(map.as_raw_fd()).unwrap_or(u32::MAX),
        key: std::ptr::from_ref(&key) as u64,
        value: std::ptr::from_mut(&mut value) as u64,
        ..Default::default()
    };
    bpf(BPF_MAP_LOOKUP_ELEM, &mut attr)?;
    Ok(value)
}

/// `BPF_MAP_UPDATE_ELEM` of a u32 key and u64 value.
pub fn update_u64(map: BorrowedFd<'_>, key: u32, value: u64) -> io::Result<()> {
    let mut attr = Elem {
        map_fd: u32::try_from(map.as_raw_fd()).unwrap_or(u32::MAX),
        key: std::ptr::from_ref(&key) as u64,
        value: std::ptr::from_ref(&value) as u64,
        ..Default::default()
    };
    bpf(BPF_MAP_UPDATE_ELEM, &mut attr).map(|_| ())
}

/// A program refused: the error, and the verifier's log when it wrote one.
#[derive(Debug)]
pub struct LoadError {
    /// The system call's error.
    pub err: io::Error,
    /// The verifier's last words (its last non-empty line), if any.
    pub log: Option<String>,
}

impl std::fmt::Display for LoadError {
    /// The error, and the verifier's last words in parentheses.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.log {
            Some(log) => write!(f, "{} ({log})", self.err),
            None => write!(f, "{}", self.err),
        }
    }
}

/// What a program is loaded as.
pub struct ProgSpec<'a> {
    /// `BPF_PROG_TYPE_*`.
    pub prog_type: u32,
    /// `BPF_TRACE_*` (tracing programs), else 0.
    pub attach_type: u32,
    /// The BTF id of the function (fexit), else 0.
    pub attach_btf_id: u32,
    /// Name shown by bpftool (15 bytes kept).
    pub name: &'a str,
    /// `BPF_F_*` load flags ([`F_SLEEPABLE`]), else 0.
    pub flags: u32,
}

/// `BPF_PROG_LOAD`. On refusal, loads again with the verifier's log on, to
/// say why.
pub fn prog_load(insns: &[Insn], spec: &ProgSpec<'_>) -> Result<OwnedFd, LoadError> {
    let bytes: Vec<[u8; 8]> = insns.iter().map(Insn::bytes).collect();
    // GPL-compatible: bpf_probe_read_kernel is a GPL-only helper.
    let license = c"Dual MIT/GPL";
    let mut attr = ProgLoad {
        prog_type: spec.prog_type,
        insn_cnt: u32::try_from(bytes.len()).unwrap_or(u32::MAX),
        insns: bytes.as_ptr() as u64,
        license: license.as_ptr() as u64,
        prog_name: name16(spec.name),
        expected_attach_type: spec.attach_type,
        attach_btf_id: spec.attach_btf_id,
        prog_flags: spec.flags,
        ..Default::default()
    };
    match bpf(BPF_PROG_LOAD, &mut attr) {
        Ok(r) => fd_of(r).map_err(|err| LoadError { err, log: None }),
        Err(err) => {
            // The log again, for its last line (the kernel keeps a log's
            // end when the buffer is short, since 6.4), and whole at trace
            // level only: a buffer of a MiB, freed, leaves the heap that
            // much larger for good (glibc raises its mmap threshold).
            let len = if tracing::enabled!(tracing::Level::TRACE) { 1 << 20 } else { LOG_TAIL };
            let mut log = vec![0u8; len];
            attr.log_level = 1;
            attr.log_size = u32::try_from(log.len()).unwrap_or(0);
            attr.log_buf = log.as_mut_ptr() as u64;
            let _ = bpf(BPF_PROG_LOAD, &mut attr).map(fd_of);
            let text = String::from_utf8_lossy(log.split(|&b| b == 0).next().unwrap_or(&[])).into_owned();
            tracing::trace!("the verifier's log:\n{text}");
            // The reason, before the verifier's closing count
            // ("processed N insns (limit ...) ...").
            let last = text
                .lines()
                .rev()
                .map(str::trim)
                .find(|l| !l.is_empty() && !l.starts_with("processed "))
                .map(str::to_owned);
            Err(LoadError { err, log: last })
        }
    }
}

/// The bytes of a refused program's verifier log kept for its last line
/// (below glibc's mmap threshold: taken from the heap and given back).
const LOG_TAIL: usize = 16 * 1024;

/// Loads `insns` as a sleepable `BPF_PROG_TYPE_SYSCALL` program named
/// `name` whose one map (slot 0) is `map`; `Err(why)` where the kernel
/// refuses it (the verifier's last line).
pub fn load_syscall_with_map(insns: &[Insn], map: BorrowedFd<'_>, name: &str) -> Result<OwnedFd, String> {
    let insns = Insn::with_map_fds(insns, &[map.as_raw_fd()]).ok_or("the program names no map")?;
    let spec = ProgSpec { prog_type: PROG_SYSCALL, attach_type: 0, attach_btf_id: 0, name, flags: F_SLEEPABLE };
    prog_load(&insns, &spec).map_err(|e| format!("the kernel refused the program: {e}"))
}

/// Word `i` (8 bytes, native-endian) of `b`, as the programs' records and
/// map values are read; `None` past its end.
pub fn word_at(b: &[u8], i: usize) -> Option<u64> {
    let at = i.checked_mul(8)?;
    Some(u64::from_ne_bytes(b.get(at..at.checked_add(8)?)?.try_into().ok()?))
}

/// `BPF_RAW_TRACEPOINT_OPEN`: attaches a raw tracepoint program to the
/// tracepoint `name`, or (no name) a tracing program (fexit) to the
/// function it was loaded for. Closing the descriptor detaches it.
pub fn raw_tracepoint_open(prog: BorrowedFd<'_>, name: Option<&std::ffi::CStr>) -> io::Result<OwnedFd> {
    let mut attr = RawTpOpen {
        name: name.map_or(0, |n| n.as_ptr() as u64),
        prog_fd: u32::try_from(prog.as_raw_fd()).unwrap_or(u32::MAX),
        pad: 0,
    };
    fd_of(bpf(BPF_RAW_TRACEPOINT_OPEN, &mut attr)?)
}

/// `BPF_LINK_CREATE` of an iterator program (`BPF_TRACE_ITER`): a link
/// that makes iterators. A task iterator walks every task, or only the
/// tasks of the process `pid` when one is given.
pub fn iter_link_create(prog: BorrowedFd<'_>, pid: Option<u32>) -> io::Result<OwnedFd> {
    let info = IterTask { pid: pid.unwrap_or(0), ..Default::default() };
    let mut attr = LinkCreate {
        prog_fd: u32::try_from(prog.as_raw_fd()).unwrap_or(u32::MAX),
        attach_type: ATTACH_ITER,
        ..Default::default()
    };
    if pid.is_some() {
        attr.iter_info = std::ptr::from_ref(&info) as u64;
        attr.iter_info_len = u32::try_from(std::mem::size_of::<IterTask>()).unwrap_or(0);
    }
    fd_of(bpf(BPF_LINK_CREATE, &mut attr)?)
}

/// `BPF_PROG_TEST_RUN` of a `BPF_PROG_TYPE_SYSCALL` program on the
/// context `ctx`, which the kernel copies in, lets the program read and
/// write, and copies back. Returns the program's return value.
pub fn prog_run(prog: BorrowedFd<'_>, ctx: &mut [u8]) -> io::Result<u32> {
    let mut attr = TestRun {
        prog_fd: u32::try_from(prog.as_raw_fd()).unwrap_or(u32::MAX),
        ctx_size_in: u32::try_from(ctx.len()).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?,
        ctx_in: ctx.as_mut_ptr() as u64,
        ..Default::default()
    };
    bpf(BPF_PROG_TEST_RUN, &mut attr)?;
    Ok(attr.retval)
}

/// `BPF_ITER_CREATE`: a new iterator of `link`, read like a file from its
/// start to its end (each `read` runs the program on the next tasks).
pub fn iter_create(link: BorrowedFd<'_>) -> io::Result<OwnedFd> {
    let mut attr = IterCreate { link_fd: u32::try_from(link.as_raw_fd()).unwrap_or(u32::MAX), flags: 0 };
    fd_of(bpf(BPF_ITER_CREATE, &mut attr)?)
}

/// The consumer's view of a `BPF_MAP_TYPE_RINGBUF`: the consumer position
/// page (read-write) and the producer position page followed by the data,
/// which the kernel maps twice in a row so that a record never wraps.
pub struct Ring {
    fd: OwnedFd,
    consumer: *mut libc::c_void,
    producer: *mut libc::c_void,
    page: usize,
    size: usize,
}

// SAFETY: the two mappings belong to this value alone (unmapped on drop);
// the consumer position is written only through `&mut self` (`drain`), and
// the kernel's side is read with atomic loads. Moving it to another thread
// changes nothing of that.
unsafe impl Send for Ring {}

/// A record being written (`BPF_RINGBUF_BUSY_BIT`).
const BUSY: u32 = 1 << 31;
/// A record the program discarded (`BPF_RINGBUF_DISCARD_BIT`).
const DISCARD: u32 = 1 << 30;
/// The header before each record: length and flags, page offset.
const HDR: u64 = 8;

impl Ring {
    /// Maps the ring of `fd`, of `size` bytes (a power of two, a multiple of
    /// the page size).
    pub fn map(fd: OwnedFd, size: usize) -> io::Result<Ring> {
        // SAFETY: sysconf has no preconditions.
        let page = usize::try_from(unsafe { libc::sysconf(libc::_SC_PAGESIZE) }).unwrap_or(4096);
        let prod_len = page.checked_add(size.checked_mul(2).ok_or_else(|| io::Error::other("ring too large"))?);
        let prod_len = prod_len.ok_or_else(|| io::Error::other("ring too large"))?;
        let off = libc::off_t::try_from(page).map_err(|_| io::Error::other("page size"))?;
        // SAFETY: a new shared mapping of the ring's consumer page (offset
        // 0, one page, read-write as the kernel requires); no existing
        // memory is touched.
        let consumer = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                page,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED,
                fd.as_raw_fd(),
                0,
            )
        };
        if consumer == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: a new read-only shared mapping of the producer page and
        // the data (twice), as the kernel lays them out after the consumer
        // page.
        let producer = unsafe {
            libc::mmap(std::ptr::null_mut(), prod_len, libc::PROT_READ, libc::MAP_SHARED, fd.as_raw_fd(), off)
        };
        if producer == libc::MAP_FAILED {
            let err = io::Error::last_os_error();
            // SAFETY: unmaps the consumer page mapped just above, not used since.
            unsafe { libc::munmap(consumer, page) };
            return Err(err);
        }
        Ok(Ring { fd, consumer, producer, page, size })
    }

    /// The ring's descriptor (readable when records wait).
    pub fn fd(&self) -> BorrowedFd<'_> {
        use std::os::fd::AsFd;
        self.fd.as_fd()
    }

    fn consumer_pos(&self) -> &AtomicU64 {
        // SAFETY: the consumer page is mapped for the life of `self`,
        // page-aligned, and starts with the kernel's u64 consumer position;
        // AtomicU64 has u64's size and alignment.
        unsafe { &*(self.consumer as *const AtomicU64) }
    }

    fn producer_pos(&self) -> &AtomicU64 {
        // SAFETY: as `consumer_pos`, for the producer page (the kernel writes
        // it, we only load it).
        unsafe { &*(self.producer as *const AtomicU64) }
    }

    /// Hands each committed record's bytes (up to 16) to `f`, releasing its
    /// space; stops when a fresh look at the producer finds nothing more, or
    /// after `max` records. Returns how many records it read.
    pub fn drain(&mut self, max: usize, mut f: impl FnMut([u8; 16], usize)) -> usize {
        let mask = u64::try_from(self.size).unwrap_or(0).wrapping_sub(1);
        let mut cons = self.consumer_pos().load(Ordering::Acquire);
        let mut n = 0;
        loop {
            let prod = self.producer_pos().load(Ordering::Acquire);
            if cons >= prod || n >= max {
                return n;
            }
            while cons < prod && n < max {
                let off = usize::try_from(cons & mask).unwrap_or(0);
                // SAFETY: `off` < size, and the data (mapped twice after the
                // producer page) holds the 8-byte header there; the header
                // is 8-aligned, and its first u32 is written by the kernel
                // with release semantics.
                let len = unsafe {
                    let hdr = self.producer.cast::<u8>().add(self.page + off);
                    (*hdr.cast::<AtomicU32>()).load(Ordering::Acquire)
                };
                if len & BUSY != 0 {
                    break;
                }
                let body = len & !(BUSY | DISCARD);
                if len & DISCARD == 0 {
                    let mut rec = [0u8; 16];
                    let take = usize::try_from(body).unwrap_or(0).min(16).min(self.size);
                    // SAFETY: the record's body follows its header within
                    // the doubled data mapping (`off + 8 + body` <= 2 *
                    // size, as the kernel never makes a record larger than
                    // the ring); `take` <= 16 bytes fit `rec`.
                    unsafe {
                        let src = self.producer.cast::<u8>().add(self.page + off + 8);
                        std::ptr::copy_nonoverlapping(src, rec.as_mut_ptr(), take);
                    }
                    f(rec, take);
                    n += 1;
                }
                cons += (u64::from(body) + HDR + 7) & !7;
                self.consumer_pos().store(cons, Ordering::Release);
            }
            if cons < prod {
                // A record still being written: the next wake-up brings it.
                return n;
            }
        }
    }
}

impl Drop for Ring {
    fn drop(&mut self) {
        // SAFETY: both mappings were made in `map` with these lengths and
        // nothing refers to them past this drop.
        unsafe {
            libc::munmap(self.consumer, self.page);
            libc::munmap(self.producer, self.page + 2 * self.size);
        }
    }
}

/// A file mapped read-only and private, whole: the kernel's BTF, which Linux
/// 6.16 and later let be mapped (`btf_sysfs_vmlinux_mmap`: the kernel's own
/// pages, mapped by frame number at `mmap`, so reading them costs no copy,
/// no page fault and no memory of this process). The BTF of a running
/// kernel never changes, so the bytes are lent as a slice.
pub struct Mapped {
    at: std::ptr::NonNull<libc::c_void>,
    len: usize,
}

impl Mapped {
    /// Maps the whole of `file` (`len` bytes, its size), or says why not (a
    /// kernel that does not map its BTF refuses).
    pub fn of(file: &std::fs::File, len: usize) -> io::Result<Mapped> {
        if len == 0 {
            return Err(io::Error::from(io::ErrorKind::InvalidInput));
        }
        // SAFETY: a new private read-only mapping at an address the kernel
        // picks; nothing else refers to that range.
        let at =
            unsafe { libc::mmap(std::ptr::null_mut(), len, libc::PROT_READ, libc::MAP_PRIVATE, file.as_raw_fd(), 0) };
        if at == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        let at = std::ptr::NonNull::new(at).ok_or_else(|| io::Error::from(io::ErrorKind::InvalidData))?;
        Ok(Mapped { at, len })
    }

    /// The mapped bytes.
    pub fn bytes(&self) -> &[u8] {
        // SAFETY: `len` readable bytes are mapped at `at` until this value is
        // dropped; the mapping is read-only and private, and the kernel never
        // writes the BTF it maps, so the bytes do not change under the borrow.
        unsafe { std::slice::from_raw_parts(self.at.as_ptr().cast::<u8>(), self.len) }
    }
}

impl Drop for Mapped {
    fn drop(&mut self) {
        // SAFETY: the mapping made in `of` with this length; no borrow of it
        // outlives this value.
        unsafe { libc::munmap(self.at.as_ptr(), self.len) };
    }
}

impl std::fmt::Debug for Mapped {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mapped").field("len", &self.len).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bpf::asm::{Asm, Reg};

    /// A program the verifier refuses at its end, after a log longer than
    /// the tail kept: the error still says why (the line before the
    /// verifier's closing count).
    #[test]
    fn a_refused_program_says_the_verifiers_last_line_after_a_long_log() {
        if !crate::source::tasks::may_load() {
            eprintln!(
                "SKIP a_refused_program_says_the_verifiers_last_line_after_a_long_log: no privilege to load eBPF"
            );
            return;
        }
        let mut a = Asm::new();
        for i in 0..2000 {
            a.mov_imm(Reg::R1, i);
        }
        // r0 never set: "R0 !read_ok".
        a.exit();
        let insns = a.finish().unwrap();
        let spec = ProgSpec {
            prog_type: PROG_SYSCALL,
            attach_type: 0,
            attach_btf_id: 0,
            name: "fdir_test",
            flags: F_SLEEPABLE,
        };
        let e = prog_load(&insns, &spec).unwrap_err();
        let said = e.log.clone().unwrap_or_default();
        assert!(said.contains("R0"), "{e}");
    }
}
