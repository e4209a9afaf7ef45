//! What the benches share: an idle `fdir` process to measure.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// An idle `fdir __idle` process, killed and reaped on drop.
pub struct Idle(pub Child);

impl Drop for Idle {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts one and waits past the settle age, as a long-running process is.
pub fn idle() -> Idle {
    let c = Command::new(env!("CARGO_BIN_EXE_fdir")).arg("__idle").stdout(Stdio::null()).spawn().unwrap();
    std::thread::sleep(Duration::from_millis(2100));
    Idle(c)
}
