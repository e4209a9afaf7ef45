//! `fdir selftest`: the monitor tests itself, so its users can prove its
//! claims on their own hardware. Known-answer tests of SHA-256, and a fault
//! injection campaign: bits flipped in the in-memory baseline copies and in
//! canonical forms as they are read, each followed by a check cycle that must
//! detect and repair (or dismiss) the fault and never raise a false alarm.

use std::process::{Child, Command, Stdio};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result};
use fdir::baseline::Coverage;
use fdir::event::EventRecord;
use fdir::guard::sha256_self_test_full;
use fdir::rng::Rng;
use fdir::{Clock, Finding, Monitor, SystemClock};

use super::args::Format;
use super::output::Output;
use super::run::chosen_subsystems;

struct Idle(Child);

impl Drop for Idle {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Runs the self-tests; exit 0 if everything was caught, 1 otherwise.
pub fn run(campaign: u64, seed: Option<u64>, format: Format) -> Result<u8> {
    let clock = SystemClock;
    let mut out = Output::new(format);
    let kat = sha256_self_test_full();
    out.emit(&EventRecord::Selftest {
        time: clock.wall(),
        ok: kat.is_ok(),
        message: kat.clone().err().unwrap_or_else(|| "SHA-256 known answers (FIPS 180-2)".into()),
    })?;
    if kat.is_err() {
        return Ok(1);
    }
    if campaign == 0 {
        return Ok(0);
    }

    let exe = std::env::current_exe().context("cannot find fdir's own executable")?;
    let child = Idle(
        Command::new(exe)
            .arg("__idle")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .spawn()
            .context("cannot start the campaign's target process")?,
    );
    let coverage = Coverage::Pids { pids: vec![child.0.id()] };
    let subsystems = chosen_subsystems(&coverage, None)?;
    let (mut monitor, _) = Monitor::baseline(coverage, &subsystems, 2, &clock)?;
    let (first, _) = monitor.cycle(&clock);
    if first.iter().any(|f| matches!(f, Finding::Drift { .. } | Finding::ObjectDrift { .. })) {
        anyhow::bail!("the campaign's target drifted before any fault was injected: {first:?}");
    }

    let seed = seed.unwrap_or_else(|| {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(1, |d| u64::try_from(d.as_nanos() % u128::from(u64::MAX)).unwrap_or(1))
            | 1
    });
    let mut rng = Rng(seed | 1);
    let (mut bf, mut bd, mut br, mut of, mut od, mut fa, mut missed) = (0u64, 0u64, 0u64, 0u64, 0u64, 0u64, 0u64);
    let started = Instant::now();
    for _ in 0..campaign {
        let r = rng.next();
        if r % 10 < 7 {
            // A bit flip in one baseline copy; one round in ten, two copies at once.
            let faults = if r % 100 < 10 { 2 } else { 1 };
            let base = rng.next();
            for k in 0..faults {
                // Consecutive seeds pick consecutive copies (the copy is bits 8..).
                if monitor.inject_baseline_fault(base.wrapping_add(k << 8)).is_some() {
                    bf += 1;
                }
            }
            let (findings, summary) = monitor.cycle(&clock);
            let drift = findings.iter().any(|f| matches!(f, Finding::Drift { .. } | Finding::ObjectDrift { .. }));
            let repaired = u64::try_from(summary.repaired).unwrap_or(u64::MAX);
            if drift {
                fa += 1;
            }
            if repaired >= faults {
                bd += faults;
                br += repaired.min(faults);
            } else {
                bd += repaired;
                br += repaired;
                missed += faults - repaired;
            }
        } else {
            if monitor.inject_observation_fault(rng.next()).is_none() {
                continue;
            }
            of += 1;
            let (findings, _) = monitor.cycle(&clock);
            let drift = findings.iter().any(|f| matches!(f, Finding::Drift { .. } | Finding::ObjectDrift { .. }));
            let dismissed = findings.iter().any(|f| matches!(f, Finding::Transient { .. }));
            if drift {
                fa += 1;
            } else if dismissed {
                od += 1;
            } else {
                missed += 1;
            }
        }
    }
    out.emit(&EventRecord::Campaign {
        time: clock.wall(),
        seed,
        baseline_faults: bf,
        baseline_detected: bd,
        baseline_repaired: br,
        observation_faults: of,
        observation_dismissed: od,
        false_alarms: fa,
        missed,
        duration_ms: started.elapsed().as_secs_f64() * 1000.0,
    })?;
    drop(child);
    Ok(if fa == 0 && missed == 0 { 0 } else { 1 })
}
