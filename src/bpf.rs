//! The eBPF machinery both of fdir's eBPF users share, built without a
//! compiler, kernel headers or any BPF toolchain: a tiny typed assembler
//! (`asm`), the few answers fdir needs from the kernel's BTF (`btf`), and
//! bpf(2) itself (`sys`, where every `unsafe` of eBPF is).
//!
//! The users: the eBPF trigger source (`trigger::ebpf`: system calls that
//! change isolation, seen as they return) and the task table
//! (`source::tasks`: every process's namespaces and limits read from the
//! kernel's task list in one `read`, in place of ten links and a file a
//! process).

pub(crate) mod asm;
pub(crate) mod btf;
pub(crate) mod sys;
