//! The signals `watch` answers (SIGTERM and SIGINT stop it, SIGHUP takes a
//! new baseline) and its sleep between checks, on the one thread that
//! checks (docs/responses.md): the handlers set a flag and write a byte to a
//! socket pair, and the loop sleeps in `ppoll` on the other end until the
//! next check is due or a signal arrives. No thread of its own, no channel.
//! The responder thread (commands run beside the checks) wakes it the same
//! way when a command has finished ([`Signals::waker`]), and the trigger hub
//! when re-checks are due ([`Signals::trigger_waker`]).

use std::io::{self, Read, Write};
use std::os::unix::net::UnixStream;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use rustix::event::{PollFd, PollFlags, Timespec};

pub use fdir::runtime::Asked;

/// The installed handlers and the read end their bytes arrive on.
pub struct Signals {
    wake: UnixStream,
    /// The write end, for [`Signals::waker`].
    write: UnixStream,
    /// Each signal's flag and what it asks, in the order they are acted on:
    /// a stop before a new baseline, a finished action, then triggers.
    flags: [(Arc<AtomicBool>, Asked); 5],
}

impl Signals {
    /// Installs the handlers. A signal that arrives before the first wait
    /// is kept (its flag and its byte) and answered by that wait.
    pub fn install() -> io::Result<Signals> {
        use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
        let (wake, write) = UnixStream::pair()?;
        wake.set_nonblocking(true)?;
        let asks = [
            (SIGTERM, Asked::Stop("SIGTERM")),
            (SIGINT, Asked::Stop("SIGINT")),
            (SIGHUP, Asked::Rebaseline),
            (0, Asked::ActionDone),
            (0, Asked::Triggered),
        ];
        let flags = asks.map(|(_, asked)| (Arc::new(AtomicBool::new(false)), asked));
        for ((sig, _), (flag, _)) in asks.iter().zip(&flags).filter(|((sig, _), _)| *sig != 0) {
            // Handlers run in the order registered: the flag is set before
            // the byte wakes the loop.
            signal_hook::flag::register(*sig, Arc::clone(flag))?;
            signal_hook::low_level::pipe::register(*sig, write.try_clone()?)?;
        }
        Ok(Signals { wake, write, flags })
    }

    /// What the responder thread calls when a command has finished: sets the
    /// flag of [`Asked::ActionDone`] and wakes the loop.
    pub fn waker(&self) -> io::Result<impl Fn() + Send + 'static> {
        self.waker_for(Asked::ActionDone)
    }

    /// What the trigger hub calls when re-checks are due: sets the flag of
    /// [`Asked::Triggered`] and wakes the loop.
    pub fn trigger_waker(&self) -> io::Result<impl Fn() + Send + 'static> {
        self.waker_for(Asked::Triggered)
    }

    fn waker_for(&self, asked: Asked) -> io::Result<impl Fn() + Send + 'static> {
        let write = self.write.try_clone()?;
        write.set_nonblocking(true)?;
        let flag = self.flags.iter().find(|(_, a)| *a == asked).map(|(f, _)| Arc::clone(f));
        Ok(move || {
            if let Some(flag) = &flag {
                flag.store(true, Ordering::SeqCst);
            }
            // A full socket already holds a byte that wakes the loop.
            let _ = (&write).write(&[1]);
        })
    }

    /// Sleeps at most `timeout`; returns what a signal that arrived asks,
    /// or `None` when the time is up. A sleep that times out makes one
    /// system call: the socket is drained only when it woke the loop.
    pub fn wait(&self, timeout: Duration) -> io::Result<Option<Asked>> {
        let deadline = std::time::Instant::now() + timeout;
        loop {
            if let Some(asked) = self.take() {
                return Ok(Some(asked));
            }
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            let left = Timespec {
                tv_sec: i64::try_from(left.as_secs()).unwrap_or(i64::MAX),
                tv_nsec: i64::from(left.subsec_nanos()),
            };
            let mut fds = [PollFd::new(&self.wake, PollFlags::IN)];
            match rustix::event::poll(&mut fds, Some(&left)) {
                Ok(0) => return Ok(self.take()),
                Ok(_) | Err(rustix::io::Errno::INTR) => {}
                Err(e) => return Err(e.into()),
            }
            // The bytes only wake the loop; the flags say which signals
            // came. A byte whose flag an earlier wait already answered
            // wakes it for nothing: it sleeps on until the deadline.
            self.drain()?;
        }
    }

    /// Reads every byte waiting on the socket.
    fn drain(&self) -> io::Result<()> {
        let mut sink = [0u8; 64];
        loop {
            match (&self.wake).read(&mut sink) {
                Ok(0) => return Ok(()),
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
    }

    /// The first signal that came, its flag cleared.
    fn take(&self) -> Option<Asked> {
        self.flags.iter().find(|(flag, _)| flag.swap(false, Ordering::SeqCst)).map(|(_, asked)| *asked)
    }
}

impl fdir::runtime::Wait for Signals {
    fn wait(&self, timeout: Duration) -> io::Result<Option<Asked>> {
        Signals::wait(self, timeout)
    }
}
