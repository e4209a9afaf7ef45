//! Prometheus metrics: a small, dependency-free registry of what the monitor
//! did (this file), rendered in the Prometheus text exposition format,
//! version 0.0.4 (`metrics/exposition.rs`), and a minimal HTTP server that
//! serves it at `/metrics` (`metrics/server.rs`).
//!
//! The metric names are a contract (docs/contracts.md §7): the alerting rules
//! in `dist/prometheus/` and the dashboard in `dist/grafana/` depend on them.
//!
//! | family | type | labels |
//! | --- | --- | --- |
//! | `fdir_up` | gauge (always 1) | |
//! | `fdir_build_info` | gauge (always 1) | `version` |
//! | `fdir_checks_total` | counter | |
//! | `fdir_check_failures_total` | counter | |
//! | `fdir_check_duration_seconds` | histogram | `le` |
//! | `fdir_last_check_timestamp_seconds` | gauge | |
//! | `fdir_targets` | gauge | |
//! | `fdir_unobservable_targets` | gauge | |
//! | `fdir_anomalies_total` | counter | `subsystem`, `severity` |
//! | `fdir_recoveries_total` | counter | `subsystem` |
//! | `fdir_actions_total` | counter | `severity`, `action` |
//! | `fdir_action_failures_total` | counter | `severity`, `action` |
//! | `fdir_selftest_failures_total` | counter | |
//! | `fdir_baseline_repairs_total` | counter | |
//! | `fdir_workload_anomalies_total` | counter, only with `--metrics-workload-labels` | `unit`, `container`, `pod`, `subsystem` |
//!
//! Workload labels are on one series of their own, which the user turns on
//! ([`Metrics::enable_workload_labels`]): never on the default series, whose
//! cardinality is fixed (subsystems × severities). Even then its series are
//! bounded: beyond [`MAX_WORKLOAD_SERIES`] label sets, drifts are counted
//! under `unit="other"`.
//!
//! Every `subsystem` × `severity` pair of `fdir_anomalies_total` and every
//! subsystem of `fdir_recoveries_total` is exported from the start with the
//! value 0, so that `increase()` in an alerting rule sees the first anomaly
//! (a series that appears with the value 1 has no earlier sample to increase
//! from). [`Metrics::declare_action`] does the same for actions.
//!
//! ```no_run
//! use std::sync::Arc;
//! use std::time::{Duration, SystemTime};
//! use fdir::metrics::{serve, Metrics};
//! use fdir::{Severity, Subsystem};
//!
//! let metrics = Arc::new(Metrics::new());
//! let server = serve(Arc::clone(&metrics), "127.0.0.1:9477")?;
//! metrics.set_targets(12, 1);
//! metrics.check_done(Duration::from_millis(3), SystemTime::now());
//! metrics.anomaly(Subsystem::Seccomp, Severity::SafeMode);
//! println!("serving on http://{}/metrics", server.local_addr());
//! server.stop();
//! # Ok::<(), fdir::Error>(())
//! ```

use std::collections::BTreeMap;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::{Severity, Subsystem};

mod exposition;
mod server;

pub use exposition::CONTENT_TYPE;
pub use server::{MAX_CLIENTS, MAX_REQUEST, MetricsServer, REQUEST_TIMEOUT, serve};

/// The upper bounds (`le`, in seconds) of the buckets of
/// `fdir_check_duration_seconds`: from 10 µs (one small process, warm caches)
/// to 10 s (every process of a large node); slower checks land in `+Inf`.
pub const DURATION_BUCKETS: [f64; 13] =
    [0.00001, 0.00005, 0.0001, 0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 10.0];

/// The most distinct `(severity, action)` label sets kept; actions beyond them
/// are counted under the action name [`OTHER_ACTION`], so a misconfigured
/// action name that varies cannot grow the registry without bound.
pub const MAX_ACTION_SERIES: usize = 64;

/// The most label sets of `fdir_workload_anomalies_total`; drifts of further
/// workloads are counted under `unit="other"`.
pub const MAX_WORKLOAD_SERIES: usize = 1000;

/// A label set of `fdir_workload_anomalies_total`: unit, container, pod, subsystem.
type WorkloadKey = (String, String, String, &'static str);

/// The action name that actions beyond [`MAX_ACTION_SERIES`] are counted under.
pub const OTHER_ACTION: &str = "other";

/// Action names are cut to this many characters.
const MAX_ACTION_NAME: usize = 128;

/// The metrics of one fdir process: counters, gauges and the check-duration
/// histogram.
///
/// Share it as `Arc<Metrics>` between the monitor thread, which records, and
/// the server thread, which renders; every method takes `&self`. All state is
/// behind one mutex, so a render is a consistent snapshot (a histogram's
/// `+Inf` bucket always equals its `_count`).
#[derive(Debug)]
pub struct Metrics {
    state: Mutex<State>,
    /// The trigger sources' counters, once a watch starts them
    /// (docs/triggers.md); rendered after the rest.
    triggers: std::sync::OnceLock<std::sync::Arc<crate::trigger::hub::Stats>>,
}

#[derive(Debug)]
struct State {
    /// `fdir_workload_anomalies_total`, once enabled.
    workload_anomalies: Option<BTreeMap<WorkloadKey, u64>>,
    checks: u64,
    check_failures: u64,
    selftest_failures: u64,
    baseline_repairs: u64,
    duration: Histogram,
    last_check: Option<f64>,
    targets: u64,
    unobservable: u64,
    /// By (subsystem name, severity name): sorted by label values.
    anomalies: BTreeMap<(&'static str, &'static str), u64>,
    /// By subsystem name.
    recoveries: BTreeMap<&'static str, u64>,
    /// By (severity name, action name).
    actions: BTreeMap<(&'static str, String), ActionCounts>,
    /// Code bytes verified by every round so far (`code`).
    code_verified: u64,
    /// Code bytes of every target, at the last round.
    code_total: u64,
    /// Of the code bytes verified, those read through the targets' own
    /// memory, every round so far.
    code_read: u64,
    /// Of the code bytes verified, those taken from a round's shared copy.
    code_shared: u64,
    /// Pages of the targets' code mappings that are their own, at the last
    /// round.
    code_private_pages: u64,
    /// Time threads were kept stopped reading seccomp filters, seconds.
    stopped_seconds: f64,
}

#[derive(Debug, Default, Clone, Copy)]
struct ActionCounts {
    taken: u64,
    failed: u64,
}

#[derive(Debug, Default)]
struct Histogram {
    /// Cumulative: `buckets[i]` counts the observations `<= DURATION_BUCKETS[i]`.
    buckets: [u64; DURATION_BUCKETS.len()],
    count: u64,
    sum: f64,
}

impl Histogram {
    fn observe(&mut self, value: f64) {
        for (le, n) in DURATION_BUCKETS.iter().zip(self.buckets.iter_mut()) {
            if value <= *le {
                *n = n.saturating_add(1);
            }
        }
        self.count = self.count.saturating_add(1);
        self.sum += value;
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

impl Metrics {
    /// A registry with every counter at zero, no check made yet and no targets.
    pub fn new() -> Metrics {
        let anomalies = Subsystem::ALL
            .iter()
            .flat_map(|sub| Severity::ALL.iter().map(move |sev| ((sub.name(), sev.name()), 0)))
            .collect();
        let recoveries = Subsystem::ALL.iter().map(|sub| (sub.name(), 0)).collect();
        Metrics {
            state: Mutex::new(State {
                workload_anomalies: None,
                checks: 0,
                check_failures: 0,
                selftest_failures: 0,
                baseline_repairs: 0,
                duration: Histogram::default(),
                last_check: None,
                targets: 0,
                unobservable: 0,
                anomalies,
                recoveries,
                actions: BTreeMap::new(),
                code_verified: 0,
                code_total: 0,
                code_read: 0,
                code_shared: 0,
                code_private_pages: 0,
                stopped_seconds: 0.0,
            }),
            triggers: std::sync::OnceLock::new(),
        }
    }

    /// Serves the trigger metrics (`fdir_trigger_*`) from `stats`.
    pub fn set_triggers(&self, stats: std::sync::Arc<crate::trigger::hub::Stats>) {
        let _ = self.triggers.set(stats);
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // Nothing panics while holding the lock; should a caller's thread
        // panic anyway, the counters are still whole numbers worth serving.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A check cycle completed (whatever it found) after `duration`, at `at`:
    /// counts it in `fdir_checks_total`, observes `duration` in
    /// `fdir_check_duration_seconds` and sets
    /// `fdir_last_check_timestamp_seconds` to `at` in unix seconds.
    pub fn check_done(&self, duration: Duration, at: SystemTime) {
        let at = match at.duration_since(UNIX_EPOCH) {
            Ok(d) => d.as_secs_f64(),
            Err(e) => -e.duration().as_secs_f64(),
        };
        let mut s = self.lock();
        s.checks = s.checks.saturating_add(1);
        s.duration.observe(duration.as_secs_f64());
        s.last_check = Some(at);
    }

    /// A check could not be made (target unreadable, baseline refused ...):
    /// counts it in `fdir_check_failures_total`. The last-check timestamp is
    /// left alone, so a node whose checks all fail goes stale.
    pub fn check_failed(&self) {
        let mut s = self.lock();
        s.check_failures = s.check_failures.saturating_add(1);
    }

    /// A drift of `subsystem` was declared with `severity`: counts it in
    /// `fdir_anomalies_total{subsystem,severity}`.
    pub fn anomaly(&self, subsystem: Subsystem, severity: Severity) {
        let mut s = self.lock();
        let n = s.anomalies.entry((subsystem.name(), severity.name())).or_insert(0);
        *n = n.saturating_add(1);
    }

    /// Serves `fdir_workload_anomalies_total{unit,container,pod,subsystem}`
    /// (`--metrics-workload-labels`): a series per workload that drifted,
    /// at most [`MAX_WORKLOAD_SERIES`].
    pub fn enable_workload_labels(&self) {
        let mut s = self.lock();
        s.workload_anomalies.get_or_insert_with(BTreeMap::new);
    }

    /// A drift of `subsystem` in a process of `workload`: counts it in
    /// `fdir_workload_anomalies_total`, when enabled (an empty label for
    /// what the workload does not name).
    pub fn workload_anomaly(&self, workload: &crate::Workload, subsystem: Subsystem) {
        let mut s = self.lock();
        let Some(series) = s.workload_anomalies.as_mut() else { return };
        let label = |v: &Option<String>| v.as_deref().unwrap_or_default().chars().take(256).collect::<String>();
        let mut key = (label(&workload.unit), label(&workload.container), label(&workload.pod), subsystem.name());
        if !series.contains_key(&key) && series.len() >= MAX_WORKLOAD_SERIES {
            key = ("other".into(), String::new(), String::new(), subsystem.name());
        }
        let n = series.entry(key).or_insert(0);
        *n = n.saturating_add(1);
    }

    /// A drifted `subsystem` is back at its baseline: counts it in
    /// `fdir_recoveries_total{subsystem}`.
    pub fn recovered(&self, subsystem: Subsystem) {
        let mut s = self.lock();
        let n = s.recoveries.entry(subsystem.name()).or_insert(0);
        *n = n.saturating_add(1);
    }

    /// Sets the gauges `fdir_targets` (every target monitored, observable or
    /// not) and `fdir_unobservable_targets` (those of them that could not be
    /// read: another user's process, an LSM's refusal).
    pub fn set_targets(&self, total: u64, unobservable: u64) {
        let mut s = self.lock();
        s.targets = total;
        s.unobservable = unobservable;
    }

    /// A round's coverage: code bytes verified (added to
    /// `fdir_code_verified_bytes_total`), code bytes of every target
    /// (`fdir_code_bytes`), and how long seccomp-filter reads kept threads
    /// stopped (added to `fdir_seccomp_stop_seconds_total`).
    pub fn coverage(&self, code_verified: u64, code_total: u64, stopped: Duration) {
        let mut s = self.lock();
        s.code_verified = s.code_verified.saturating_add(code_verified);
        s.code_total = code_total;
        s.stopped_seconds += stopped.as_secs_f64();
    }

    /// Where a round's verified code came from (docs/code-pages.md): bytes
    /// read through the targets' own memory (added to
    /// `fdir_code_read_bytes_total`), bytes taken from the round's shared
    /// copy (added to `fdir_code_shared_bytes_total`), and the pages of the
    /// targets' code that are their own (`fdir_code_private_pages`).
    pub fn code_sources(&self, read: u64, shared: u64, private_pages: u64) {
        let mut s = self.lock();
        s.code_read = s.code_read.saturating_add(read);
        s.code_shared = s.code_shared.saturating_add(shared);
        s.code_private_pages = private_pages;
    }

    /// The SHA-256 known-answer self-test failed: counts it in
    /// `fdir_selftest_failures_total`.
    pub fn selftest_failed(&self) {
        let mut s = self.lock();
        s.selftest_failures = s.selftest_failures.saturating_add(1);
    }

    /// A redundant in-memory copy of the baseline was outvoted and repaired:
    /// counts it in `fdir_baseline_repairs_total`.
    pub fn baseline_repaired(&self) {
        let mut s = self.lock();
        s.baseline_repairs = s.baseline_repairs.saturating_add(1);
    }

    /// The response `action` (e.g. `freeze`, `on-anomaly`, `safe-mode-command`)
    /// was taken for a drift graded `severity`: counts it in
    /// `fdir_actions_total{severity,action}`, and if it failed (`ok` false)
    /// also in `fdir_action_failures_total{severity,action}`.
    ///
    /// Both series of the label set exist from the first call on. The action
    /// name is cut to 128 characters; an empty one is counted as `unnamed`;
    /// beyond [`MAX_ACTION_SERIES`] label sets, new ones are counted as
    /// [`OTHER_ACTION`].
    pub fn action(&self, severity: Severity, action: &str, ok: bool) {
        let mut s = self.lock();
        let counts = action_entry(&mut s.actions, severity, action);
        counts.taken = counts.taken.saturating_add(1);
        if !ok {
            counts.failed = counts.failed.saturating_add(1);
        }
    }

    /// Exports `fdir_actions_total` and `fdir_action_failures_total` for
    /// `(severity, action)` with the value 0 before any such action is taken,
    /// so that alerting rules see the first one. Call it at start for every
    /// action the configuration names; it changes no count.
    pub fn declare_action(&self, severity: Severity, action: &str) {
        let mut s = self.lock();
        action_entry(&mut s.actions, severity, action);
    }
}

fn action_entry<'a>(
    actions: &'a mut BTreeMap<(&'static str, String), ActionCounts>,
    severity: Severity,
    action: &str,
) -> &'a mut ActionCounts {
    let mut name: String = action.chars().take(MAX_ACTION_NAME).collect();
    if name.is_empty() {
        name = "unnamed".to_owned();
    }
    let mut key = (severity.name(), name);
    if !actions.contains_key(&key) && actions.len() >= MAX_ACTION_SERIES {
        key.1 = OTHER_ACTION.to_owned();
    }
    actions.entry(key).or_default()
}

#[cfg(test)]
mod tests {
    use std::io::{self, Read, Write};
    use std::net::{SocketAddr, TcpStream};
    use std::sync::Arc;
    use std::time::Instant;

    use super::exposition::*;
    use super::server::*;
    use super::*;
    use crate::Error;

    // ---- A validator of the text exposition format, strict enough to catch
    // ---- what Prometheus would refuse.

    #[derive(Debug, Clone, PartialEq)]
    struct Sample {
        name: String,
        labels: BTreeMap<String, String>,
        value: f64,
    }

    fn is_name(s: &str, colon: bool) -> bool {
        let mut chars = s.chars();
        chars.next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || (colon && c == ':'))
            && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || (colon && c == ':'))
    }

    fn parse_value(s: &str) -> f64 {
        match s {
            "+Inf" => f64::INFINITY,
            "-Inf" => f64::NEG_INFINITY,
            "NaN" => f64::NAN,
            _ => s.parse().unwrap_or_else(|_| panic!("bad value {s:?}")),
        }
    }

    /// Parses `{a="x",b="y"}` (after the name); returns the labels and the rest.
    fn parse_labels(s: &str) -> (BTreeMap<String, String>, &str) {
        let mut labels = BTreeMap::new();
        let Some(mut rest) = s.strip_prefix('{') else { return (labels, s) };
        loop {
            if let Some(r) = rest.strip_prefix('}') {
                return (labels, r);
            }
            let eq = rest.find('=').unwrap_or_else(|| panic!("no = in {rest:?}"));
            let name = &rest[..eq];
            assert!(is_name(name, false) && !name.starts_with("__"), "bad label name {name:?}");
            rest = rest[eq + 1..].strip_prefix('"').unwrap_or_else(|| panic!("unquoted label value in {s:?}"));
            let mut value = String::new();
            let mut chars = rest.char_indices();
            let end = loop {
                match chars.next() {
                    Some((_, '\\')) => match chars.next() {
                        Some((_, '\\')) => value.push('\\'),
                        Some((_, '"')) => value.push('"'),
                        Some((_, 'n')) => value.push('\n'),
                        other => panic!("bad escape {other:?} in {s:?}"),
                    },
                    Some((i, '"')) => break i,
                    Some((_, '\n')) => panic!("raw newline in label value"),
                    Some((_, c)) => value.push(c),
                    None => panic!("unterminated label value in {s:?}"),
                }
            };
            assert!(labels.insert(name.to_owned(), value).is_none(), "duplicate label {name} in {s:?}");
            rest = &rest[end + 1..];
            if let Some(r) = rest.strip_prefix(',') {
                rest = r;
            } else {
                assert!(rest.starts_with('}'), "expected , or }} in {s:?}");
            }
        }
    }

    /// Validates `text` as exposition format 0.0.4 and returns its samples.
    fn parse(text: &str) -> Vec<Sample> {
        assert!(text.ends_with('\n'), "the last line must end with a newline");
        let mut help: BTreeMap<String, String> = BTreeMap::new();
        let mut types: BTreeMap<String, String> = BTreeMap::new();
        let mut samples = Vec::new();
        let mut current: Option<String> = None;
        let mut finished: Vec<String> = Vec::new();
        for line in text.lines() {
            if let Some(rest) = line.strip_prefix("# HELP ") {
                let (name, doc) = rest.split_once(' ').expect("HELP without text");
                assert!(is_name(name, true), "bad name {name:?}");
                assert!(!doc.is_empty(), "empty HELP for {name}");
                assert!(help.insert(name.to_owned(), doc.to_owned()).is_none(), "second HELP for {name}");
                if current.as_deref() != Some(name) {
                    if let Some(c) = current.take() {
                        finished.push(c);
                    }
                    assert!(!finished.contains(&name.to_owned()), "family {name} is split");
                    current = Some(name.to_owned());
                }
                continue;
            }
            if let Some(rest) = line.strip_prefix("# TYPE ") {
                let (name, kind) = rest.split_once(' ').expect("TYPE without type");
                assert!(
                    ["counter", "gauge", "histogram", "summary", "untyped"].contains(&kind),
                    "bad type {kind:?} for {name}"
                );
                assert!(!samples.iter().any(|s: &Sample| family_of(&s.name, &types) == name), "TYPE after samples");
                assert!(types.insert(name.to_owned(), kind.to_owned()).is_none(), "second TYPE for {name}");
                assert_eq!(current.as_deref(), Some(name), "TYPE for {name} outside its family");
                continue;
            }
            assert!(!line.starts_with('#'), "stray comment {line:?}");
            assert!(!line.is_empty(), "empty line");
            let name_end = line.find(['{', ' ']).expect("sample without value");
            let name = &line[..name_end];
            assert!(is_name(name, true), "bad metric name {name:?}");
            let (labels, rest) = parse_labels(&line[name_end..]);
            let value = rest.strip_prefix(' ').unwrap_or_else(|| panic!("no space before value in {line:?}"));
            assert!(!value.contains(' '), "timestamps are not used: {line:?}");
            let fam = family_of(name, &types);
            assert_eq!(current.as_deref(), Some(fam.as_str()), "sample {name} outside its family");
            assert!(help.contains_key(&fam) && types.contains_key(&fam), "{name} has no HELP/TYPE");
            if types[&fam] == "counter" {
                assert!(name.ends_with("_total"), "counter {name} without _total");
            }
            samples.push(Sample { name: name.to_owned(), labels, value: parse_value(value) });
        }
        for (name, kind) in &types {
            assert!(help.contains_key(name), "{name} has TYPE but no HELP");
            if kind == "histogram" {
                check_histogram(name, &samples);
            }
        }
        assert_eq!(help.len(), types.len(), "every family has both HELP and TYPE");
        // Label sets within a metric are unique.
        let mut seen = std::collections::BTreeSet::new();
        for s in &samples {
            assert!(seen.insert((s.name.clone(), format!("{:?}", s.labels))), "duplicate series {s:?}");
        }
        samples
    }

    fn family_of(name: &str, types: &BTreeMap<String, String>) -> String {
        for suffix in ["_bucket", "_sum", "_count"] {
            if let Some(base) = name.strip_suffix(suffix)
                && types.get(base).is_some_and(|t| t == "histogram")
            {
                return base.to_owned();
            }
        }
        name.to_owned()
    }

    fn check_histogram(name: &str, samples: &[Sample]) {
        let bucket_name = format!("{name}_bucket");
        let buckets: Vec<&Sample> = samples.iter().filter(|s| s.name == bucket_name).collect();
        assert!(!buckets.is_empty(), "{name} has no buckets");
        let mut last = f64::NEG_INFINITY;
        let mut last_count = 0.0;
        for b in &buckets {
            let le = parse_value(b.labels.get("le").expect("bucket without le"));
            assert!(le > last, "{name} buckets not in increasing le order");
            assert!(b.value >= last_count, "{name} buckets not cumulative");
            last = le;
            last_count = b.value;
        }
        assert_eq!(last, f64::INFINITY, "{name} does not end with +Inf");
        let count = value(samples, &format!("{name}_count"), &[]);
        assert_eq!(last_count, count, "{name} +Inf bucket != _count");
        let sum = value(samples, &format!("{name}_sum"), &[]);
        assert!(sum >= 0.0);
    }

    #[test]
    fn workload_labels_only_when_asked_and_bounded() {
        let m = Metrics::new();
        let nginx = crate::Workload { unit: Some("nginx.service".into()), ..crate::Workload::default() };
        m.workload_anomaly(&nginx, Subsystem::Seccomp);
        assert!(!m.render().contains("fdir_workload_anomalies_total"), "off by default");
        m.enable_workload_labels();
        m.workload_anomaly(&nginx, Subsystem::Seccomp);
        m.workload_anomaly(&nginx, Subsystem::Seccomp);
        let pod = crate::Workload {
            container: Some("3f2a".into()),
            runtime: Some("containerd".into()),
            pod: Some("1f2e".into()),
            ..crate::Workload::default()
        };
        m.workload_anomaly(&pod, Subsystem::Cgroups);
        let samples = parse(&m.render());
        let name = "fdir_workload_anomalies_total";
        let labels = [("unit", "nginx.service"), ("container", ""), ("pod", ""), ("subsystem", "seccomp")];
        assert_eq!(value(&samples, name, &labels), 2.0);
        let labels = [("unit", ""), ("container", "3f2a"), ("pod", "1f2e"), ("subsystem", "cgroups")];
        assert_eq!(value(&samples, name, &labels), 1.0);
        // The default series has no workload label.
        assert!(samples.iter().filter(|s| s.name == "fdir_anomalies_total").all(|s| !s.labels.contains_key("unit")));
        // Bounded: further workloads are counted as "other".
        for i in 0..MAX_WORKLOAD_SERIES + 10 {
            let w = crate::Workload { unit: Some(format!("u{i}.service")), ..crate::Workload::default() };
            m.workload_anomaly(&w, Subsystem::Seccomp);
        }
        let samples = parse(&m.render());
        assert_eq!(samples.iter().filter(|s| s.name == name).count(), MAX_WORKLOAD_SERIES + 1);
        let other = [("unit", "other"), ("container", ""), ("pod", ""), ("subsystem", "seccomp")];
        assert!(value(&samples, name, &other) >= 10.0);
    }

    fn value(samples: &[Sample], name: &str, labels: &[(&str, &str)]) -> f64 {
        let want: BTreeMap<String, String> = labels.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
        samples
            .iter()
            .find(|s| s.name == name && s.labels == want)
            .unwrap_or_else(|| panic!("no sample {name} {want:?}"))
            .value
    }

    #[test]
    fn metrics_validator_rejects_invalid_exposition() {
        let ok = "# HELP a_total A.\n# TYPE a_total counter\na_total{x=\"1\"} 3\n";
        assert_eq!(parse(ok).len(), 1);
        let hist = |b1: &str, inf: &str, count: &str| {
            format!(
                "# HELP h H.\n# TYPE h histogram\nh_bucket{{le=\"1\"}} {b1}\nh_bucket{{le=\"+Inf\"}} {inf}\n\
                 h_sum 1\nh_count {count}\n"
            )
        };
        assert_eq!(parse(&hist("1", "2", "2")).len(), 4);
        let bad = [
            "a_total 3\n".to_owned(),                                                         // no HELP/TYPE
            "# HELP a_total A.\na_total 3\n".to_owned(),                                      // no TYPE
            "# HELP a_total A.\n# TYPE a_total counter\na_total 3".to_owned(),                // no final newline
            "# HELP a A.\n# TYPE a counter\na 3\n".to_owned(),                                // counter without _total
            "# HELP a_total A.\n# TYPE a_total counter\na_total{x=\"a\\qb\"} 3\n".to_owned(), // bad escape
            "# HELP a_total A.\n# TYPE a_total counter\na_total{x=1} 3\n".to_owned(),         // unquoted
            "# HELP a_total A.\n# TYPE a_total counter\na_total three\n".to_owned(),          // bad value
            "# HELP a_total A.\n# TYPE a_total counter\na_total 1\na_total 2\n".to_owned(),   // duplicate
            "# HELP 1a A.\n# TYPE 1a gauge\n1a 1\n".to_owned(),                               // bad name
            hist("3", "2", "2"),                                                              // not cumulative
            hist("1", "2", "3"),                                                              // +Inf != _count
        ];
        for text in bad {
            let caught = std::panic::catch_unwind(|| parse(&text));
            assert!(caught.is_err(), "accepted invalid exposition:\n{text}");
        }
    }

    // ---- The registry.

    const FAMILIES: &[(&str, &str)] = &[
        ("fdir_up", "gauge"),
        ("fdir_build_info", "gauge"),
        ("fdir_checks_total", "counter"),
        ("fdir_check_failures_total", "counter"),
        ("fdir_check_duration_seconds", "histogram"),
        ("fdir_last_check_timestamp_seconds", "gauge"),
        ("fdir_targets", "gauge"),
        ("fdir_unobservable_targets", "gauge"),
        ("fdir_anomalies_total", "counter"),
        ("fdir_recoveries_total", "counter"),
        ("fdir_actions_total", "counter"),
        ("fdir_action_failures_total", "counter"),
        ("fdir_selftest_failures_total", "counter"),
        ("fdir_baseline_repairs_total", "counter"),
        ("fdir_code_verified_bytes_total", "counter"),
        ("fdir_code_bytes", "gauge"),
        ("fdir_code_read_bytes_total", "counter"),
        ("fdir_code_shared_bytes_total", "counter"),
        ("fdir_code_private_pages", "gauge"),
        ("fdir_seccomp_stop_seconds_total", "counter"),
    ];

    fn busy() -> Metrics {
        let m = Metrics::new();
        m.set_targets(40, 3);
        m.check_done(Duration::from_micros(3), UNIX_EPOCH + Duration::from_millis(1_700_000_000_250));
        m.check_done(Duration::from_millis(2), UNIX_EPOCH + Duration::from_secs(1_700_000_030));
        m.check_done(Duration::from_secs(20), UNIX_EPOCH + Duration::from_secs(1_700_000_060));
        m.anomaly(Subsystem::Seccomp, Severity::SafeMode);
        m.anomaly(Subsystem::MemoryMaps, Severity::Log);
        m.recovered(Subsystem::MemoryMaps);
        m.check_failed();
        m.selftest_failed();
        m.baseline_repaired();
        m.action(Severity::Isolate, "freeze", true);
        m.action(Severity::SafeMode, "safe-mode-command", false);
        m
    }

    #[test]
    fn metrics_render_is_valid_exposition_fresh_and_busy() {
        for m in [Metrics::new(), busy()] {
            let text = m.render();
            let samples = parse(&text);
            for (name, kind) in FAMILIES {
                assert!(text.contains(&format!("# HELP {name} ")), "no HELP for {name}");
                assert!(text.contains(&format!("# TYPE {name} {kind}\n")), "no TYPE for {name}");
            }
            assert_eq!(value(&samples, "fdir_up", &[]), 1.0);
            assert_eq!(value(&samples, "fdir_build_info", &[("version", env!("CARGO_PKG_VERSION"))]), 1.0);
            // Every family and sample name is one of the contract's.
            for s in &samples {
                let base = ["_bucket", "_sum", "_count"]
                    .iter()
                    .find_map(|x| s.name.strip_suffix(x).filter(|b| *b == "fdir_check_duration_seconds"))
                    .unwrap_or(&s.name);
                assert!(FAMILIES.iter().any(|(n, _)| *n == base), "unexpected metric {}", s.name);
            }
        }
    }

    #[test]
    fn metrics_fresh_values() {
        let samples = parse(&Metrics::new().render());
        assert_eq!(value(&samples, "fdir_checks_total", &[]), 0.0);
        assert_eq!(value(&samples, "fdir_check_duration_seconds_count", &[]), 0.0);
        assert_eq!(value(&samples, "fdir_check_duration_seconds_bucket", &[("le", "+Inf")]), 0.0);
        assert!(!samples.iter().any(|s| s.name == "fdir_last_check_timestamp_seconds"), "no check yet");
        // Every subsystem x severity pair is there at 0, so increase() sees the first.
        for sub in Subsystem::ALL {
            assert_eq!(value(&samples, "fdir_recoveries_total", &[("subsystem", sub.name())]), 0.0);
            for sev in Severity::ALL {
                let labels = [("subsystem", sub.name()), ("severity", sev.name())];
                assert_eq!(value(&samples, "fdir_anomalies_total", &labels), 0.0);
            }
        }
        assert!(!samples.iter().any(|s| s.name == "fdir_actions_total"));
    }

    #[test]
    fn metrics_counters_increase() {
        let m = Metrics::new();
        let get = |name: &str, labels: &[(&str, &str)]| value(&parse(&m.render()), name, labels);
        let safe = [("subsystem", "seccomp"), ("severity", "safe-mode")];
        for i in 1..=3u32 {
            m.check_done(Duration::from_millis(1), SystemTime::now());
            m.anomaly(Subsystem::Seccomp, Severity::SafeMode);
            m.recovered(Subsystem::Cgroups);
            m.check_failed();
            m.selftest_failed();
            m.baseline_repaired();
            m.action(Severity::Degrade, "degrade-command", i % 2 == 0);
            m.coverage(4096, 10_000 * u64::from(i), Duration::from_micros(250));
            m.code_sources(1024, 3072, u64::from(i));
            let n = f64::from(i);
            assert_eq!(get("fdir_code_verified_bytes_total", &[]), 4096.0 * n);
            assert_eq!(get("fdir_code_bytes", &[]), 10_000.0 * n, "a gauge: the latest round's total");
            assert_eq!(get("fdir_code_read_bytes_total", &[]), 1024.0 * n);
            assert_eq!(get("fdir_code_shared_bytes_total", &[]), 3072.0 * n);
            assert_eq!(get("fdir_code_private_pages", &[]), n, "a gauge: the latest round's");
            assert!((get("fdir_seccomp_stop_seconds_total", &[]) - 0.000_25 * n).abs() < 1e-9);
            assert_eq!(get("fdir_checks_total", &[]), n);
            assert_eq!(get("fdir_check_duration_seconds_count", &[]), n);
            assert_eq!(get("fdir_anomalies_total", &safe), n);
            assert_eq!(get("fdir_anomalies_total", &[("subsystem", "seccomp"), ("severity", "log")]), 0.0);
            assert_eq!(get("fdir_recoveries_total", &[("subsystem", "cgroups")]), n);
            assert_eq!(get("fdir_check_failures_total", &[]), n);
            assert_eq!(get("fdir_selftest_failures_total", &[]), n);
            assert_eq!(get("fdir_baseline_repairs_total", &[]), n);
            let action = [("severity", "degrade"), ("action", "degrade-command")];
            assert_eq!(get("fdir_actions_total", &action), n);
            assert_eq!(get("fdir_action_failures_total", &action), f64::from(i.div_ceil(2)));
        }
    }

    #[test]
    fn metrics_gauges_and_timestamp() {
        let m = busy();
        let samples = parse(&m.render());
        assert_eq!(value(&samples, "fdir_targets", &[]), 40.0);
        assert_eq!(value(&samples, "fdir_unobservable_targets", &[]), 3.0);
        assert_eq!(value(&samples, "fdir_last_check_timestamp_seconds", &[]), 1_700_000_060.0);
        m.set_targets(2, 0);
        m.check_done(Duration::ZERO, UNIX_EPOCH + Duration::from_millis(1_700_000_090_500));
        let samples = parse(&m.render());
        assert_eq!(value(&samples, "fdir_targets", &[]), 2.0);
        assert_eq!(value(&samples, "fdir_unobservable_targets", &[]), 0.0);
        assert_eq!(value(&samples, "fdir_last_check_timestamp_seconds", &[]), 1_700_000_090.5);
    }

    #[test]
    fn metrics_histogram_buckets() {
        let m = busy(); // 3 µs, 2 ms, 20 s
        let samples = parse(&m.render());
        let bucket = |le: &str| value(&samples, "fdir_check_duration_seconds_bucket", &[("le", le)]);
        assert_eq!(bucket("0.00001"), 1.0);
        assert_eq!(bucket("0.001"), 1.0);
        assert_eq!(bucket("0.005"), 2.0);
        assert_eq!(bucket("10"), 2.0);
        assert_eq!(bucket("+Inf"), 3.0);
        assert_eq!(value(&samples, "fdir_check_duration_seconds_count", &[]), 3.0);
        let sum = value(&samples, "fdir_check_duration_seconds_sum", &[]);
        assert!((sum - 20.002003).abs() < 1e-9, "{sum}");
        // An observation exactly on a bound belongs to that bucket (le is <=).
        let m = Metrics::new();
        m.check_done(Duration::from_millis(1), SystemTime::now());
        let samples = parse(&m.render());
        assert_eq!(value(&samples, "fdir_check_duration_seconds_bucket", &[("le", "0.001")]), 1.0);
        assert_eq!(value(&samples, "fdir_check_duration_seconds_bucket", &[("le", "0.0005")]), 0.0);
    }

    #[test]
    fn metrics_label_values_are_escaped() {
        let m = Metrics::new();
        let nasty = "run \"x\"\\y\nz";
        m.action(Severity::Restart, nasty, false);
        let text = m.render();
        assert!(text.contains(r#"action="run \"x\"\\y\nz""#), "{text}");
        let samples = parse(&text);
        let labels = [("severity", "restart"), ("action", nasty)];
        assert_eq!(value(&samples, "fdir_actions_total", &labels), 1.0);
        assert_eq!(value(&samples, "fdir_action_failures_total", &labels), 1.0);
        // Escaping in isolation.
        let mut out = String::new();
        escape_label_value(&mut out, "a\\b\"c\nd\té");
        assert_eq!(out, "a\\\\b\\\"c\\nd\té");
    }

    #[test]
    fn metrics_actions_are_bounded_and_declared() {
        let m = Metrics::new();
        m.declare_action(Severity::Isolate, "freeze");
        m.action(Severity::Log, "", true);
        let samples = parse(&m.render());
        let freeze = [("severity", "isolate"), ("action", "freeze")];
        assert_eq!(value(&samples, "fdir_actions_total", &freeze), 0.0);
        assert_eq!(value(&samples, "fdir_action_failures_total", &freeze), 0.0);
        assert_eq!(value(&samples, "fdir_actions_total", &[("severity", "log"), ("action", "unnamed")]), 1.0);

        for i in 0..200 {
            m.action(Severity::Log, &format!("cmd-{i}"), true);
        }
        m.action(Severity::Isolate, "freeze", true); // known: still counted under its name
        m.action(Severity::Log, &"x".repeat(1000), true);
        let samples = parse(&m.render());
        let series = samples.iter().filter(|s| s.name == "fdir_actions_total").count();
        assert_eq!(series, MAX_ACTION_SERIES + 1, "the cap plus the overflow series");
        assert_eq!(value(&samples, "fdir_actions_total", &freeze), 1.0);
        let other = value(&samples, "fdir_actions_total", &[("severity", "log"), ("action", OTHER_ACTION)]);
        assert_eq!(other, f64::from(200 - (u32::try_from(MAX_ACTION_SERIES).unwrap() - 2) + 1));
        assert!(samples.iter().all(|s| s.labels.get("action").is_none_or(|a| a.chars().count() <= 128)));
    }

    #[test]
    fn metrics_output_is_stable_and_sorted() {
        let a = busy();
        let b = busy();
        // Recorded in another order: the same text.
        b.action(Severity::Restart, "b-action", true);
        b.action(Severity::Restart, "a-action", true);
        a.action(Severity::Restart, "a-action", true);
        a.action(Severity::Restart, "b-action", true);
        assert_eq!(a.render(), b.render());
        assert_eq!(a.render(), a.render());
        let samples = parse(&a.render());
        for name in ["fdir_anomalies_total", "fdir_recoveries_total", "fdir_actions_total"] {
            let sets: Vec<Vec<&String>> =
                samples.iter().filter(|s| s.name == name).map(|s| s.labels.values().collect()).collect();
            let keys: Vec<Vec<String>> = samples
                .iter()
                .filter(|s| s.name == name)
                .map(|s| {
                    let line_order: Vec<&str> = match name {
                        "fdir_anomalies_total" => vec!["subsystem", "severity"],
                        "fdir_recoveries_total" => vec!["subsystem"],
                        _ => vec!["severity", "action"],
                    };
                    line_order.iter().map(|l| s.labels[*l].clone()).collect()
                })
                .collect();
            let mut sorted = keys.clone();
            sorted.sort();
            assert_eq!(keys, sorted, "{name} label sets not sorted");
            assert!(!sets.is_empty());
        }
    }

    #[test]
    fn metrics_shared_between_threads() {
        let m = Arc::new(Metrics::new());
        let threads: Vec<_> = (0..4)
            .map(|_| {
                let m = Arc::clone(&m);
                std::thread::spawn(move || {
                    for _ in 0..500 {
                        m.check_done(Duration::from_micros(50), SystemTime::now());
                        m.anomaly(Subsystem::Cgroups, Severity::Degrade);
                        let _ = m.render();
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        let samples = parse(&m.render());
        assert_eq!(value(&samples, "fdir_checks_total", &[]), 2000.0);
        assert_eq!(
            value(&samples, "fdir_anomalies_total", &[("subsystem", "cgroups"), ("severity", "degrade")]),
            2000.0
        );
    }

    #[test]
    fn metrics_floats_are_spelled_as_prometheus_reads_them() {
        assert_eq!(float(f64::INFINITY), "+Inf");
        assert_eq!(float(f64::NEG_INFINITY), "-Inf");
        assert_eq!(float(f64::NAN), "NaN");
        assert_eq!(float(0.00001), "0.00001");
        assert_eq!(float(10.0), "10");
        assert_eq!(float(1_700_000_000.25), "1700000000.25");
        for le in DURATION_BUCKETS {
            assert_eq!(float(le).parse::<f64>().unwrap(), le);
        }
    }

    #[test]
    fn metrics_head_end() {
        let cases: &[(&[u8], Option<usize>)] = &[
            (b"GET / HTTP/1.1\r\n\r\n", Some(18)),
            (b"GET / HTTP/1.1\n\n", Some(16)),
            (b"GET / HTTP/1.1\r\nHost: x\r\n\r\nbody", Some(27)),
            (b"GET / HTTP/1.1\r\nHost: x\r\n", None),
            (b"", None),
        ];
        for (input, want) in cases {
            assert_eq!(head_end(input), *want, "{:?}", String::from_utf8_lossy(input));
        }
    }

    // ---- The server, over real TCP on 127.0.0.1.

    fn fast() -> Limits {
        Limits { max_request: MAX_REQUEST, timeout: Duration::from_millis(300) }
    }

    /// Sends `request` and reads the whole response (the server closes).
    fn exchange(addr: SocketAddr, request: &[u8]) -> String {
        let mut s = TcpStream::connect(addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        s.write_all(request).unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).unwrap();
        out
    }

    fn split(response: &str) -> (u16, String, String) {
        let (head, body) = response.split_once("\r\n\r\n").expect("no end of head");
        let status = head.split(' ').nth(1).unwrap().parse().unwrap();
        (status, head.to_owned(), body.to_owned())
    }

    fn header<'a>(head: &'a str, name: &str) -> Option<&'a str> {
        head.lines().skip(1).find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case(name).then(|| v.trim())
        })
    }

    fn get(addr: SocketAddr, path: &str) -> (u16, String, String) {
        split(&exchange(addr, format!("GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes()))
    }

    #[test]
    fn metrics_server_serves_metrics() {
        let m = Arc::new(busy());
        let server = serve(Arc::clone(&m), "127.0.0.1:0").unwrap();
        let addr = server.local_addr();
        assert_ne!(addr.port(), 0);

        let (status, head, body) = get(addr, "/metrics");
        assert_eq!(status, 200, "{head}");
        assert_eq!(header(&head, "content-type"), Some(CONTENT_TYPE));
        assert_eq!(header(&head, "connection"), Some("close"));
        assert_eq!(header(&head, "content-length"), Some(body.len().to_string().as_str()));
        assert_eq!(body, m.render());
        let samples = parse(&body);
        assert_eq!(value(&samples, "fdir_checks_total", &[]), 3.0);

        // Live: a new check shows in the next scrape; a query string is ignored.
        m.check_done(Duration::from_millis(1), SystemTime::now());
        let (status, _, body) = get(addr, "/metrics?x=1");
        assert_eq!(status, 200);
        assert_eq!(value(&parse(&body), "fdir_checks_total", &[]), 4.0);

        let (status, head, body) = split(&exchange(addr, b"HEAD /metrics HTTP/1.1\r\n\r\n"));
        assert_eq!(status, 200);
        assert!(body.is_empty());
        assert!(header(&head, "content-length").unwrap().parse::<usize>().unwrap() > 0);

        let (status, head, body) = get(addr, "/");
        assert_eq!(status, 200);
        assert!(header(&head, "content-type").unwrap().starts_with("text/html"));
        assert!(body.contains("href=\"/metrics\""), "{body}");
        server.stop();
    }

    #[test]
    fn metrics_server_errors() {
        let server = serve_with(Arc::new(Metrics::new()), "127.0.0.1:0", fast()).unwrap();
        let addr = server.local_addr();
        for path in ["/metric", "/metrics/", "/favicon.ico", "/../metrics"] {
            assert_eq!(get(addr, path).0, 404, "{path}");
        }
        for method in ["POST", "PUT", "DELETE", "OPTIONS"] {
            let (status, head, _) = split(&exchange(addr, format!("{method} /metrics HTTP/1.1\r\n\r\n").as_bytes()));
            assert_eq!(status, 405, "{method}");
            assert_eq!(header(&head, "allow"), Some("GET, HEAD"));
        }
        for bad in ["GARBAGE\r\n\r\n", "GET /metrics\r\n\r\n", "GET /metrics SPDY/3\r\n\r\n"] {
            assert_eq!(split(&exchange(addr, bad.as_bytes())).0, 400, "{bad:?}");
        }
        // Still serving after all that.
        assert_eq!(get(addr, "/metrics").0, 200);
        server.stop();
    }

    #[test]
    fn metrics_server_survives_oversized_and_silent_clients() {
        let limits = fast();
        let server = serve_with(Arc::new(Metrics::new()), "127.0.0.1:0", limits).unwrap();
        let addr = server.local_addr();

        // A head larger than the limit: 431, and the server goes on.
        let mut big = b"GET /metrics HTTP/1.1\r\nX-Pad: ".to_vec();
        big.resize(MAX_REQUEST + 1024, b'a');
        big.extend_from_slice(b"\r\n\r\n");
        assert_eq!(split(&exchange(addr, &big)).0, 431);
        // An endless header stream without a blank line: also cut off.
        let mut s = TcpStream::connect(addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let mut refused = false;
        for _ in 0..64 {
            if s.write_all(&[b'a'; 1024]).is_err() {
                refused = true;
                break;
            }
        }
        let mut out = Vec::new();
        let _ = s.read_to_end(&mut out);
        assert!(refused || out.starts_with(b"HTTP/1.1 431"), "{}", String::from_utf8_lossy(&out));
        drop(s);
        assert_eq!(get(addr, "/metrics").0, 200);

        // A client that connects and sends nothing holds the server for at
        // most the timeout; the next client is then served.
        let silent = TcpStream::connect(addr).unwrap();
        let start = Instant::now();
        assert_eq!(get(addr, "/metrics").0, 200);
        // Bounds with room for a loaded machine: a hang would be unbounded.
        let bound = limits.timeout + Duration::from_secs(3);
        assert!(start.elapsed() < bound, "{:?}", start.elapsed());
        // The silent one was told so.
        let mut silent = silent;
        silent.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let mut out = String::new();
        silent.read_to_string(&mut out).unwrap();
        assert!(out.starts_with("HTTP/1.1 408"), "{out}");

        // A client that trickles its request a byte at a time is cut off at
        // the deadline, not kept alive by each byte.
        let mut slow = TcpStream::connect(addr).unwrap();
        slow.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let start = Instant::now();
        for &b in b"GET /metrics HTTP/1.1\r\nX: " {
            if slow.write_all(&[b]).is_err() {
                break;
            }
            std::thread::sleep(Duration::from_millis(30));
        }
        let mut out = Vec::new();
        let _ = slow.read_to_end(&mut out);
        assert!(start.elapsed() < bound, "{:?}", start.elapsed());
        assert!(out.is_empty() || out.starts_with(b"HTTP/1.1 408"), "{}", String::from_utf8_lossy(&out));
        assert_eq!(get(addr, "/metrics").0, 200);
        server.stop();
    }

    #[test]
    fn slow_clients_do_not_hold_up_a_scrape() {
        // Clients that send half a request and stall, with a timeout longer
        // than the test: a scrape is still answered, and they still wait
        // (a server answering one at a time would never reach the scrape).
        let limits = Limits { max_request: MAX_REQUEST, timeout: Duration::from_secs(600) };
        let server = serve_with(Arc::new(busy()), "127.0.0.1:0", limits).unwrap();
        let addr = server.local_addr();
        let stalled: Vec<TcpStream> = (0..5)
            .map(|_| {
                let mut s = TcpStream::connect(addr).unwrap();
                s.write_all(b"GET /metr").unwrap();
                s
            })
            .collect();
        let (status, _, body) = get(addr, "/metrics");
        assert_eq!(status, 200);
        assert!(body.contains("fdir_checks_total"), "{body}");
        for mut s in &stalled {
            s.set_nonblocking(true).unwrap();
            let mut buf = [0u8; 16];
            let e = s.read(&mut buf).unwrap_err();
            assert_eq!(e.kind(), io::ErrorKind::WouldBlock, "a stalled client was answered");
        }
        // MAX_CLIENTS stalled at once: the next is told 503 (once the server
        // has taken them all in), and served again once they have gone.
        let more: Vec<TcpStream> = (stalled.len()..MAX_CLIENTS).map(|_| TcpStream::connect(addr).unwrap()).collect();
        // A refused client reads 503, or a reset if its request arrived
        // after the server closed (0 here).
        let status = || {
            let mut s = TcpStream::connect(addr).unwrap();
            s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
            let mut out = String::new();
            match s.write_all(b"GET /metrics HTTP/1.1\r\n\r\n").and_then(|()| s.read_to_string(&mut out)) {
                Ok(_) => split(&out).0,
                Err(e) if e.kind() == io::ErrorKind::ConnectionReset => 0,
                Err(e) => panic!("{e}"),
            }
        };
        let until = |want: u16| {
            let deadline = Instant::now() + Duration::from_secs(60);
            loop {
                let status = status();
                if status == want || (want == 503 && status == 0) {
                    return;
                }
                assert!(Instant::now() < deadline, "no {want} within 60 s (last {status})");
                std::thread::sleep(Duration::from_millis(20));
            }
        };
        until(503);
        drop(more);
        drop(stalled);
        until(200);
        server.stop();
    }

    #[test]
    fn metrics_server_client_closing_early_is_harmless() {
        let server = serve_with(Arc::new(Metrics::new()), "127.0.0.1:0", fast()).unwrap();
        let addr = server.local_addr();
        for _ in 0..5 {
            let mut s = TcpStream::connect(addr).unwrap();
            s.write_all(b"GET /met").unwrap();
            drop(s);
            drop(TcpStream::connect(addr).unwrap());
        }
        assert_eq!(get(addr, "/metrics").0, 200);
        assert!(server.is_running());
        server.stop();
    }

    #[test]
    fn metrics_server_stops_promptly() {
        let server = serve(Arc::new(Metrics::new()), "127.0.0.1:0").unwrap();
        let addr = server.local_addr();
        assert_eq!(get(addr, "/metrics").0, 200);
        std::thread::sleep(Duration::from_millis(150)); // idle, waiting on the stop channel
        let start = Instant::now();
        server.stop();
        assert!(start.elapsed() < Duration::from_secs(1), "stop took {:?}", start.elapsed());
        assert!(TcpStream::connect(addr).is_err(), "the port is closed once stop returns");

        // Dropping the handle stops it too.
        let server = serve(Arc::new(Metrics::new()), "127.0.0.1:0").unwrap();
        let addr = server.local_addr();
        let start = Instant::now();
        drop(server);
        assert!(start.elapsed() < Duration::from_secs(1), "drop took {:?}", start.elapsed());
        assert!(TcpStream::connect(addr).is_err());
    }

    #[test]
    fn metrics_server_bind_errors_name_the_address() {
        let first = serve(Arc::new(Metrics::new()), "127.0.0.1:0").unwrap();
        let taken = first.local_addr().to_string();
        let err = serve(Arc::new(Metrics::new()), &taken).unwrap_err();
        assert!(matches!(err, Error::MetricsListen { .. }), "{err:?}");
        let msg = err.to_string();
        assert!(msg.contains(&taken) && msg.starts_with("cannot"), "{msg}");
        for bad in ["not an address", "127.0.0.1", "256.1.1.1:80"] {
            let msg = serve(Arc::new(Metrics::new()), bad).unwrap_err().to_string();
            assert!(msg.contains(bad), "{msg}");
        }
        first.stop();
    }
}
