//! `fdir watch`: the command line over the library's monitoring runtime
//! (`fdir::runtime`, docs/responses.md): its options turned into the pieces
//! the runtime is made of (the monitor, the baseline file, the policy, the
//! responder, metrics, triggers, systemd, the signals it waits on) and the
//! start-up lines; `Runtime::run` is the loop.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use fdir::baseline::{self, BaselineFile, Coverage, Key};
use fdir::event::EventRecord;
use fdir::metrics::{self, Metrics};
use fdir::policy::Policy;
use fdir::respond::{Responder, ResponseState};
use fdir::runtime::{FilePrints, Notifier, Runtime, Setup, Store};
use fdir::trigger::hub::{self, Hub};
use fdir::trigger::{Kind, Unavailable};
use fdir::{Clock, CodeBudget, Finding, Monitor, SystemClock};

use super::args::{FileArgs, WatchArgs};
use super::output::Output;
use super::run::{
    NO_DRIFT, baselinable, chosen_subsystems, decode_baseline, load_baseline, load_key, names, plural, report_baseline,
    restrict, save_noting, writable,
};
use super::signals::Signals;

pub use fdir::runtime::{DISK_VOTE_EVERY, DISK_VOTE_GAP, set_timer_slack};

/// systemd's notify protocol, when run under systemd (NOTIFY_SOCKET set).
struct Systemd {
    enabled: bool,
    watchdog: Option<Duration>,
}

impl Systemd {
    fn new() -> Systemd {
        let enabled = std::env::var_os("NOTIFY_SOCKET").is_some();
        Systemd { enabled, watchdog: if enabled { sd_notify::watchdog_enabled() } else { None } }
    }
    fn send(&self, states: &[sd_notify::NotifyState<'_>]) {
        if self.enabled
            && let Err(e) = sd_notify::notify(states)
        {
            tracing::warn!("cannot notify systemd: {e}");
        }
    }
}

impl Notifier for Systemd {
    fn watchdog(&self) -> Option<Duration> {
        self.watchdog
    }
    fn ping(&self) {
        self.send(&[sd_notify::NotifyState::Watchdog]);
    }
    fn round(&self, status: &str, healthy: bool) {
        if healthy {
            self.send(&[sd_notify::NotifyState::Watchdog, sd_notify::NotifyState::Status(status)]);
        } else {
            self.send(&[sd_notify::NotifyState::Status(&format!("{status}; UNHEALTHY"))]);
        }
    }
    fn stopping(&self) {
        self.send(&[sd_notify::NotifyState::Stopping]);
    }
}

/// The baseline file named on the command line, for the runtime.
struct FileStore {
    file: FileArgs,
    key: Option<Key>,
    /// What the file agreed with when this watch last wrote it.
    written: std::cell::RefCell<Option<FilePrints>>,
}

impl Store for FileStore {
    fn path(&self) -> &Path {
        &self.file.baseline
    }
    fn load(&self) -> Result<BaselineFile, String> {
        load_baseline(&self.file, self.key.as_ref()).map_err(|e| format!("{e:#}"))
    }
    fn read(&self) -> Result<Vec<u8>, String> {
        baseline::read(&self.file.baseline).map_err(|e| format!("{:#}", anyhow::Error::from(e)))
    }
    fn digest(&self) -> Result<fdir::Digest, String> {
        baseline::digest_of(&self.file.baseline).map_err(|e| format!("{:#}", anyhow::Error::from(e)))
    }
    fn decode(&self, bytes: &[u8]) -> Result<BaselineFile, String> {
        decode_baseline(&self.file, bytes, self.key.as_ref()).map_err(|e| format!("{e:#}"))
    }
    fn save(&self, monitor: &mut Monitor) -> Result<usize, String> {
        let (n, written) =
            save_noting(&self.file, self.key.as_ref(), monitor, &SystemClock).map_err(|e| format!("{e:#}"))?;
        self.written.replace(written);
        Ok(n)
    }
    fn written(&self) -> Option<FilePrints> {
        self.written.borrow().clone()
    }
}

/// With the proc connector running, `--all` scans /proc one round in this
/// many: forks and exits come from its notices.
const SCAN_EVERY_WITH_CONNECTOR: u64 = 10;

/// Starts the trigger sources `choice` asks for (none for `off`); each that
/// cannot run is said once, in the `started` event and the line below it.
fn start_triggers(choice: &hub::Choice, monitor: &Monitor, signals: &Signals) -> Option<Hub> {
    if choice.is_off() {
        return None;
    }
    let (sources, unavailable) = hub::open(choice);
    let wake = match signals.trigger_waker() {
        Ok(w) => w,
        Err(e) => {
            tracing::warn!("triggers off: cannot make their waker: {e}");
            return None;
        }
    };
    match Hub::start(sources, unavailable, monitor.discovers(), &monitor.pids(), wake) {
        Ok(hub) => Some(hub),
        Err(e) => {
            tracing::warn!("triggers off: {e}");
            None
        }
    }
}

/// The text line that names the trigger sources at start:
/// `TRIGGERS connector mountinfo inotify; ebpf unavailable: REASON`.
fn triggers_line(off: bool, running: &[Kind], unavailable: &[Unavailable]) -> String {
    let mut line = String::from("TRIGGERS ");
    if off {
        line.push_str("off: the timer alone");
    } else if running.is_empty() {
        line.push_str("none: the timer alone");
    } else {
        line.push_str(&running.iter().map(|k| k.name()).collect::<Vec<_>>().join(" "));
    }
    for u in unavailable {
        line.push_str(&format!("; {} unavailable: {}", u.kind, u.reason));
    }
    line
}

/// `fdir watch`.
pub fn watch(o: WatchArgs) -> Result<u8> {
    let clock = SystemClock;
    let key = load_key(&o.file)?;
    let mut out = Output::new(o.format);
    let systemd = Systemd::new();

    let mut policy = match &o.config {
        Some(path) => Policy::load(path)?,
        None => Policy::default(),
    };
    if let Some(cmd) = &o.on_anomaly {
        policy.actions.on_anomaly = Some(cmd.clone());
    }
    policy.actions.passive |= o.passive;

    // The self-test comes first: nothing is trusted if SHA-256 is wrong.
    if let Err(e) = fdir::guard::sha256_self_test_full() {
        out.emit(&EventRecord::Selftest { time: clock.wall(), ok: false, message: e.clone() })?;
        anyhow::bail!("self-test failed, not starting: {e}");
    }

    // Signals next: a SIGTERM during a long baseline still ends fdir cleanly.
    let signals = Signals::install().context("cannot install signal handlers")?;

    // A link (even a dangling one) is a file there: loaded, and so refused.
    let use_file = !o.rebaseline && o.file.baseline.symlink_metadata().is_ok();
    if !use_file {
        if let Some(Coverage::Pids { pids }) = o.target.coverage() {
            for pid in pids {
                baselinable(pid)?;
            }
        }
        writable(&o.file.baseline)?;
    }
    let (mut monitor, findings) = if use_file {
        let loaded = restrict(load_baseline(&o.file, key.as_ref())?, o.target.coverage(), &o.file.baseline)?;
        let (m, _) = Monitor::resume(&loaded, o.confirm)?;
        let resumed: Vec<Finding> = loaded
            .targets
            .iter()
            .map(|s| Finding::Baselined { snapshot: Box::new(s.clone()), first_sight: false })
            .collect();
        (m, resumed)
    } else {
        let coverage = o.target.coverage().unwrap_or(Coverage::All);
        let subsystems = chosen_subsystems(&coverage, o.subsystems.clone())?;
        Monitor::baseline(coverage, &subsystems, o.confirm, &clock)?
    };
    let written = if use_file { None } else { save_noting(&o.file, key.as_ref(), &mut monitor, &clock)?.1 };
    let code_budget = o.code_budget.unwrap_or(CodeBudget::DEFAULT);
    monitor.set_code_budget(code_budget);

    let metrics = Arc::new(Metrics::new());
    if o.metrics_workload_labels {
        metrics.enable_workload_labels();
    }
    for (sev, name) in [
        (fdir::Severity::Isolate, "isolate"),
        (fdir::Severity::Restart, "restart"),
        (fdir::Severity::Degrade, "degrade"),
        (fdir::Severity::SafeMode, "safe-mode"),
    ] {
        metrics.declare_action(sev, name);
    }
    let _server = match &o.metrics {
        Some(addr) => {
            let server = metrics::serve(Arc::clone(&metrics), addr)?;
            if !server.local_addr().ip().is_loopback() {
                // Unauthenticated, and it names processes and subsystems.
                tracing::warn!(
                    "--metrics {addr} is not a loopback address: anyone who can reach it reads fdir's metrics without authentication; bind 127.0.0.1 and put it behind the node agent or a TLS proxy (docs/metrics.md)"
                );
            }
            Some(server)
        }
        None => None,
    };

    let hub = start_triggers(&o.triggers, &monitor, &signals);
    if let Some(hub) = &hub {
        metrics.set_triggers(hub.stats());
    }
    let (running, unavailable) = match &hub {
        Some(hub) => (hub.running().to_vec(), hub.unavailable().to_vec()),
        None => (Vec::new(), Vec::new()),
    };
    // The connector reports every fork and exit: under --all, new processes
    // are baselined from its notices, and /proc is scanned only as a safety
    // net (a lost notice is answered by a full round that scans).
    if running.contains(&Kind::Connector) {
        monitor.set_scan_every(SCAN_EVERY_WITH_CONNECTOR);
    }
    out.emit(&EventRecord::Started {
        time: clock.wall(),
        version: env!("CARGO_PKG_VERSION").to_owned(),
        coverage: monitor.coverage().to_string(),
        subsystems: monitor.subsystems().to_vec(),
        interval_ms: u64::try_from(o.interval.as_millis()).unwrap_or(u64::MAX),
        baseline: o.file.baseline.display().to_string(),
        confirm: o.confirm,
        triggers: running.iter().map(|k| k.name().to_owned()).collect(),
        triggers_unavailable: unavailable.iter().map(|u| (u.kind.name().to_owned(), u.reason.clone())).collect(),
    })?;
    out.say(&triggers_line(o.triggers.is_off(), &running, &unavailable))?;
    out.emit(&EventRecord::Selftest {
        time: clock.wall(),
        ok: true,
        message: "SHA-256 known answers; runs again every cycle".into(),
    })?;
    // A resume's baselines are the file's: in text, the line below says how
    // many; the processes gone since are reported by the first check.
    if !(use_file && out.format() == super::args::Format::Text) {
        report_baseline(&mut out, &findings, clock.wall(), &monitor)?;
    }
    // A copy of every snapshot: reported, not kept for the whole watch.
    drop(findings);
    let (unreadable, subsystems, partly) = monitor.unobservable_parts();
    out.say(&format!(
        "{} {} {} {} ({}){}{}; the first check follows at once, then one every {}",
        if use_file { "resumed" } else { "baselined" },
        plural(monitor.len(), "target"),
        if use_file { "from" } else { "into" },
        o.file.baseline.display(),
        names(monitor.subsystems()),
        if partly > 0 {
            format!("; {} unreadable in {partly} of them", plural(subsystems, "subsystem"))
        } else {
            String::new()
        },
        if unreadable > 0 { format!("; {} not readable at all", plural(unreadable, "process")) } else { String::new() },
        humantime::format_duration(o.interval)
    ))?;
    if policy.actions.passive {
        out.say("passive mode: drifts are graded and reported, no action is taken")?;
    }
    if let Some(addr) = &o.metrics {
        out.say(&format!("metrics at http://{addr}/metrics"))?;
    }
    systemd.send(&[
        sd_notify::NotifyState::Ready,
        sd_notify::NotifyState::Status(&format!("watching {}", plural(monitor.len(), "target"))),
    ]);

    let mut responder = Responder::new(policy.actions.clone());
    // Cooldowns and the action limit survive a restart: kept beside the
    // baseline, sealed as it is (a state that fails its check is refused).
    let boot = fdir::boot_id()?;
    let state_file = baseline::state_path(&o.file.baseline);
    if let Some(payload) = baseline::load_state(&state_file, key.as_ref())? {
        let state: ResponseState = serde_json::from_slice(&payload)
            .with_context(|| format!("response state {} is not valid", state_file.display()))?;
        let n = responder.resume(&state, &boot);
        tracing::info!("resumed {n} cooldowns and limits from {}", state_file.display());
    }
    // Kept each time an action is counted, before it runs. A failure is
    // said, not fatal: the action still runs, and the next one tries again.
    let state_key = key.clone();
    responder.keep_state_with(boot, move |state| {
        let saved = serde_json::to_vec(state)
            .map_err(|e| fdir::Error::Bug(format!("cannot encode the response state: {e}")))
            .and_then(|payload| baseline::save_state(&state_file, &payload, state_key.as_ref()));
        if let Err(e) = saved {
            tracing::warn!("cooldowns and limits not kept, a restart would act again: {e}");
        }
    });
    if !policy.actions.passive {
        // Commands run beside the checks: one that runs up to its timeout
        // neither delays a check nor starves the systemd watchdog.
        let beside =
            signals.waker().map_err(|e| e.to_string()).and_then(|w| responder.run_beside(w).map_err(|e| e.to_string()));
        if let Err(e) = beside {
            tracing::warn!("cannot start the responder thread ({e}): actions run on the check thread");
        }
    }
    let notifier: Option<Box<dyn Notifier>> = if systemd.enabled { Some(Box::new(systemd)) } else { None };
    let mut w = Runtime::new(Setup {
        monitor,
        sink: out,
        store: FileStore { file: o.file, key, written: std::cell::RefCell::new(written) },
        policy,
        responder,
        metrics,
        notifier,
        confirm: o.confirm,
        code_budget,
        interval: o.interval,
        clock,
        hub,
    });
    let reason = w.run(&signals)?;
    w.finish(reason)?;
    Ok(NO_DRIFT)
}
