//! The proc connector: the kernel's netlink notices of process events
//! (`NETLINK_CONNECTOR`, `CN_IDX_PROC`, `PROC_CN_MCAST_LISTEN`).
//!
//! What it sees: a fork that makes a new thread group (a new thread is
//! ignored), an `execve`, a change of real or effective uid or gid (the
//! setuid family, `capset` is not among them), a `PTRACE_ATTACH`/`SEIZE`,
//! and the exit of a thread group's leader. What it misses: everything that
//! changes isolation without one of these (prctl, seccomp, mprotect, mount,
//! cgroup writes, rlimits): the other sources and the timer see those.
//!
//! A notice the kernel could not queue (the socket's receive buffer was
//! full) makes the next `recv` fail with `ENOBUFS`: the count of lost
//! notices is unknown, so each such failure counts as one loss and is
//! answered by [`Recheck::All`].
//!
//! Needs `CAP_NET_ADMIN` (the kernel refuses the subscription otherwise).

use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};

use super::{Kind, Recheck, Source, Unavailable};

/// `CN_IDX_PROC`, `CN_VAL_PROC` (linux/connector.h).
const CN_IDX_PROC: u32 = 1;
const CN_VAL_PROC: u32 = 1;
/// `PROC_CN_MCAST_LISTEN` (linux/cn_proc.h).
const PROC_CN_MCAST_LISTEN: u32 = 1;
/// `NLMSG_DONE`, the type every connector message carries.
const NLMSG_DONE: u16 = 3;

/// `enum what` of `struct proc_event`.
const PROC_EVENT_FORK: u32 = 0x0000_0001;
const PROC_EVENT_EXEC: u32 = 0x0000_0002;
const PROC_EVENT_UID: u32 = 0x0000_0004;
const PROC_EVENT_GID: u32 = 0x0000_0040;
const PROC_EVENT_PTRACE: u32 = 0x0000_0100;
const PROC_EVENT_EXIT: u32 = 0x8000_0000;

/// `struct nlmsghdr`: 16 bytes.
const NLMSG_HDR: usize = 16;
/// `struct cn_msg` without its data: 20 bytes.
const CN_MSG_HDR: usize = 20;
/// `struct proc_event` before its union: what, cpu, timestamp.
const PROC_EVENT_HDR: usize = 16;

/// The environment variable that sets the socket's receive buffer, in
/// bytes: for tests that force notices to be lost. Not a user option.
pub const RCVBUF_ENV: &str = "FDIR_TRIGGER_CONNECTOR_RCVBUF";

/// The subscribed socket.
#[derive(Debug)]
pub struct Connector {
    fd: OwnedFd,
    buf: Vec<u8>,
    lost: u64,
}

fn unavailable(reason: String) -> Unavailable {
    Unavailable { kind: Kind::Connector, reason }
}

impl Connector {
    /// Opens a netlink connector socket, joins the proc group and asks for
    /// the notices. Fails (with the reason) where the kernel has no proc
    /// connector or refuses fdir.
    pub fn open() -> Result<Connector, Unavailable> {
        // SAFETY: socket(2) with constant arguments; the result is checked
        // and owned at once.
        let raw = unsafe {
            libc::socket(
                libc::AF_NETLINK,
                libc::SOCK_DGRAM | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
                libc::NETLINK_CONNECTOR,
            )
        };
        if raw < 0 {
            return Err(unavailable(format!("cannot open a netlink connector socket: {}", io::Error::last_os_error())));
        }
        // SAFETY: `raw` is a descriptor just returned to us and owned by
        // nobody else.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        if let Some(bytes) = std::env::var(RCVBUF_ENV).ok().and_then(|v| v.parse::<libc::c_int>().ok()) {
            // SAFETY: setsockopt(2) on our socket with a pointer to a local
            // int and its size.
            let r = unsafe {
                libc::setsockopt(
                    fd.as_raw_fd(),
                    libc::SOL_SOCKET,
                    libc::SO_RCVBUF,
                    std::ptr::from_ref(&bytes).cast(),
                    socklen_of::<libc::c_int>(),
                )
            };
            if r < 0 {
                tracing::warn!("cannot set the connector's receive buffer: {}", io::Error::last_os_error());
            }
        }
        // SAFETY: an all-zero sockaddr_nl is valid; the fields are set below.
        let mut addr: libc::sockaddr_nl = unsafe { std::mem::zeroed() };
        addr.nl_family = libc::sa_family_t::try_from(libc::AF_NETLINK).unwrap_or(16);
        addr.nl_pid = 0;
        addr.nl_groups = CN_IDX_PROC;
        // SAFETY: bind(2) on our socket with a pointer to a local
        // sockaddr_nl and its size.
        let r =
            unsafe { libc::bind(fd.as_raw_fd(), std::ptr::from_ref(&addr).cast(), socklen_of::<libc::sockaddr_nl>()) };
        if r < 0 {
            return Err(unavailable(format!("cannot join the proc connector's group: {}", io::Error::last_os_error())));
        }
        let msg = subscribe_message();
        // SAFETY: send(2) on our socket of a local buffer and its length.
        let r = unsafe { libc::send(fd.as_raw_fd(), msg.as_ptr().cast(), msg.len(), 0) };
        if r < 0 {
            return Err(unavailable(format!(
                "the kernel refused the proc connector subscription: {}",
                io::Error::last_os_error()
            )));
        }
        Ok(Connector { fd, buf: vec![0; 64 * 1024], lost: 0 })
    }
}

fn socklen_of<T>() -> libc::socklen_t {
    libc::socklen_t::try_from(std::mem::size_of::<T>()).unwrap_or(0)
}

/// The netlink message that asks for the proc notices.
fn subscribe_message() -> Vec<u8> {
    let len = NLMSG_HDR + CN_MSG_HDR + 4;
    let mut m = Vec::with_capacity(len);
    // nlmsghdr: length, type, flags, sequence, port.
    m.extend_from_slice(&u32::try_from(len).unwrap_or(0).to_ne_bytes());
    m.extend_from_slice(&NLMSG_DONE.to_ne_bytes());
    m.extend_from_slice(&0u16.to_ne_bytes());
    m.extend_from_slice(&0u32.to_ne_bytes());
    m.extend_from_slice(&std::process::id().to_ne_bytes());
    // cn_msg: id (idx, val), seq, ack, len, flags.
    m.extend_from_slice(&CN_IDX_PROC.to_ne_bytes());
    m.extend_from_slice(&CN_VAL_PROC.to_ne_bytes());
    m.extend_from_slice(&0u32.to_ne_bytes());
    m.extend_from_slice(&0u32.to_ne_bytes());
    m.extend_from_slice(&4u16.to_ne_bytes());
    m.extend_from_slice(&0u16.to_ne_bytes());
    m.extend_from_slice(&PROC_CN_MCAST_LISTEN.to_ne_bytes());
    m
}

fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    let bytes: [u8; 4] = b.get(at..at.checked_add(4)?)?.try_into().ok()?;
    Some(u32::from_ne_bytes(bytes))
}

/// The re-check a `struct proc_event` (from its `what`) asks for, if any.
/// `ev` starts at the event's `what`.
pub fn recheck_of(ev: &[u8]) -> Option<Recheck> {
    let what = u32_at(ev, 0)?;
    let data = |i: usize| u32_at(ev, PROC_EVENT_HDR + 4 * i);
    match what {
        // parent pid, parent tgid, child pid, child tgid: only a new
        // thread group is a new process.
        PROC_EVENT_FORK => {
            let (pid, tgid) = (data(2)?, data(3)?);
            (pid == tgid).then_some(Recheck::New(tgid))
        }
        PROC_EVENT_EXEC => Some(Recheck::Exec(data(1)?)),
        PROC_EVENT_UID | PROC_EVENT_GID => Some(Recheck::Process(data(1)?)),
        // process pid, process tgid (the tracee), tracer pid, tracer tgid;
        // a detach has tracer 0 and changes nothing to re-check.
        PROC_EVENT_PTRACE => (data(2)? != 0).then_some(Recheck::Process(data(1)?)),
        // Only the leader's exit ends the thread group's life as fdir sees it.
        PROC_EVENT_EXIT => {
            let (pid, tgid) = (data(0)?, data(1)?);
            (pid == tgid).then_some(Recheck::Exit(tgid))
        }
        _ => None,
    }
}

/// The re-checks of one datagram (netlink messages, each a `cn_msg` of the
/// proc index holding one `proc_event`); returns how many events it held.
pub fn parse_datagram(mut b: &[u8], out: &mut Vec<Recheck>) -> usize {
    let mut n = 0;
    while let Some(len) = u32_at(b, 0).and_then(|l| usize::try_from(l).ok()) {
        if len < NLMSG_HDR {
            break;
        }
        let Some(msg) = b.get(..len.min(b.len())) else { break };
        if u32_at(msg, NLMSG_HDR) == Some(CN_IDX_PROC)
            && let Some(ev) = msg.get(NLMSG_HDR + CN_MSG_HDR..)
        {
            n += 1;
            if let Some(r) = recheck_of(ev) {
                out.push(r);
            }
        }
        let next = len.checked_add(3).map_or(usize::MAX, |l| l & !3);
        match b.get(next..) {
            Some(rest) => b = rest,
            None => break,
        }
    }
    n
}

impl Source for Connector {
    fn kind(&self) -> Kind {
        Kind::Connector
    }

    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }

    fn drain(&mut self, out: &mut Vec<Recheck>) -> usize {
        let mut n = 0;
        loop {
            // SAFETY: recv(2) on our socket into our buffer, at most its length.
            let r = unsafe { libc::recv(self.fd.as_raw_fd(), self.buf.as_mut_ptr().cast(), self.buf.len(), 0) };
            if r < 0 {
                let e = io::Error::last_os_error();
                match e.raw_os_error() {
                    Some(libc::EAGAIN) => return n,
                    Some(libc::EINTR) => continue,
                    // Notices were dropped: which ones is unknown.
                    Some(libc::ENOBUFS) => {
                        self.lost = self.lost.saturating_add(1);
                        out.push(Recheck::All);
                        n += 1;
                        continue;
                    }
                    _ => {
                        tracing::debug!("proc connector: {e}");
                        return n;
                    }
                }
            }
            let len = usize::try_from(r).unwrap_or(0);
            if let Some(data) = self.buf.get(..len) {
                n += parse_datagram(data, out);
            }
        }
    }

    fn lost(&self) -> u64 {
        self.lost
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(what: u32, data: &[u32]) -> Vec<u8> {
        let mut ev = Vec::new();
        ev.extend_from_slice(&what.to_ne_bytes());
        ev.extend_from_slice(&[0; 12]);
        for d in data {
            ev.extend_from_slice(&d.to_ne_bytes());
        }
        ev
    }

    #[test]
    fn each_event_names_what_to_recheck() {
        assert_eq!(recheck_of(&event(PROC_EVENT_FORK, &[1, 1, 50, 50])), Some(Recheck::New(50)));
        assert_eq!(recheck_of(&event(PROC_EVENT_FORK, &[1, 1, 51, 50])), None, "a new thread");
        assert_eq!(recheck_of(&event(PROC_EVENT_EXEC, &[7, 7])), Some(Recheck::Exec(7)));
        assert_eq!(recheck_of(&event(PROC_EVENT_UID, &[8, 7, 0, 0])), Some(Recheck::Process(7)));
        assert_eq!(recheck_of(&event(PROC_EVENT_GID, &[7, 7, 0, 0])), Some(Recheck::Process(7)));
        assert_eq!(recheck_of(&event(PROC_EVENT_PTRACE, &[7, 7, 9, 9])), Some(Recheck::Process(7)));
        assert_eq!(recheck_of(&event(PROC_EVENT_PTRACE, &[7, 7, 0, 0])), None, "a detach");
        assert_eq!(recheck_of(&event(PROC_EVENT_EXIT, &[7, 7, 0, 0, 1, 1])), Some(Recheck::Exit(7)));
        assert_eq!(recheck_of(&event(PROC_EVENT_EXIT, &[8, 7, 0, 0, 1, 1])), None, "a thread");
        assert_eq!(recheck_of(&event(0x80, &[7, 7])), None, "setsid");
        assert_eq!(recheck_of(&[1, 2]), None, "truncated");
    }

    #[test]
    fn a_datagram_of_two_messages_gives_both() {
        let mut d = Vec::new();
        for ev in [event(PROC_EVENT_EXEC, &[7, 7]), event(PROC_EVENT_EXIT, &[9, 9, 0, 0, 1, 1])] {
            let len = NLMSG_HDR + CN_MSG_HDR + ev.len();
            d.extend_from_slice(&u32::try_from(len).unwrap_or(0).to_ne_bytes());
            d.extend_from_slice(&[0; NLMSG_HDR - 4]);
            d.extend_from_slice(&CN_IDX_PROC.to_ne_bytes());
            d.extend_from_slice(&[0; CN_MSG_HDR - 4]);
            d.extend_from_slice(&ev);
            while d.len() % 4 != 0 {
                d.push(0);
            }
        }
        let mut out = Vec::new();
        assert_eq!(parse_datagram(&d, &mut out), 2);
        assert_eq!(out, vec![Recheck::Exec(7), Recheck::Exit(9)]);
        let mut out = Vec::new();
        assert_eq!(parse_datagram(&d[..10], &mut out), 0, "truncated");
        assert_eq!(parse_datagram(&[0; 64], &mut out), 0, "zero length");
    }
}
