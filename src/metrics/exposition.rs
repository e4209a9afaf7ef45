//! The Prometheus text exposition format, version 0.0.4: `# HELP` and
//! `# TYPE` lines, samples with escaped label values, floats spelled as
//! Prometheus reads them.

use super::{DURATION_BUCKETS, Metrics};

/// The `Content-Type` of the `/metrics` response: text exposition format 0.0.4.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

impl Metrics {
    /// Every metric in the Prometheus text exposition format 0.0.4: a
    /// `# HELP` and a `# TYPE` line for each family, then its samples, label
    /// sets sorted. The output depends only on the recorded values.
    pub fn render(&self) -> String {
        let s = self.lock();
        let mut out = String::with_capacity(8 * 1024);

        family(&mut out, "fdir_up", "gauge", "Always 1 while the fdir monitor is running and serving metrics.");
        sample(&mut out, "fdir_up", &[], "1");

        family(&mut out, "fdir_build_info", "gauge", "Always 1; the version label is the fdir version.");
        sample(&mut out, "fdir_build_info", &[("version", env!("CARGO_PKG_VERSION"))], "1");

        counter(&mut out, "fdir_checks_total", "Check cycles completed, whatever they found.", s.checks);
        counter(
            &mut out,
            "fdir_check_failures_total",
            "Checks that could not be made (target unreadable, baseline refused).",
            s.check_failures,
        );

        let name = "fdir_check_duration_seconds";
        family(&mut out, name, "histogram", "Duration of a check cycle, confirming re-reads included.");
        for (le, n) in DURATION_BUCKETS.iter().zip(s.duration.buckets.iter()) {
            sample(&mut out, "fdir_check_duration_seconds_bucket", &[("le", &float(*le))], &n.to_string());
        }
        sample(&mut out, "fdir_check_duration_seconds_bucket", &[("le", "+Inf")], &s.duration.count.to_string());
        sample(&mut out, "fdir_check_duration_seconds_sum", &[], &float(s.duration.sum));
        sample(&mut out, "fdir_check_duration_seconds_count", &[], &s.duration.count.to_string());

        let name = "fdir_last_check_timestamp_seconds";
        family(&mut out, name, "gauge", "Unix time at which the last check cycle completed; absent before the first.");
        if let Some(at) = s.last_check {
            sample(&mut out, name, &[], &float(at));
        }

        let name = "fdir_targets";
        family(&mut out, name, "gauge", "Targets monitored (processes, or the node), unobservable ones included.");
        sample(&mut out, name, &[], &s.targets.to_string());
        let name = "fdir_unobservable_targets";
        family(&mut out, name, "gauge", "Targets that could not be read (another user's process, an LSM refusal).");
        sample(&mut out, name, &[], &s.unobservable.to_string());

        counter(
            &mut out,
            "fdir_code_verified_bytes_total",
            "Bytes of code in memory compared with the baseline (the code subsystem).",
            s.code_verified,
        );
        let name = "fdir_code_bytes";
        family(
            &mut out,
            name,
            "gauge",
            "Bytes of code in memory of every target (the code subsystem), at the last round.",
        );
        sample(&mut out, name, &[], &s.code_total.to_string());
        counter(
            &mut out,
            "fdir_code_read_bytes_total",
            "Of the code bytes verified, those read through the targets' own memory (docs/code-pages.md).",
            s.code_read,
        );
        counter(
            &mut out,
            "fdir_code_shared_bytes_total",
            "Of the code bytes verified, those taken from a round's shared copy of a code file.",
            s.code_shared,
        );
        let name = "fdir_code_private_pages";
        family(&mut out, name, "gauge", "Pages of the targets' code mappings that are their own, at the last round.");
        sample(&mut out, name, &[], &s.code_private_pages.to_string());
        let name = "fdir_seccomp_stop_seconds_total";
        family(&mut out, name, "counter", "Time threads were kept stopped while their seccomp filters were read.");
        sample(&mut out, name, &[], &float(s.stopped_seconds));

        let name = "fdir_anomalies_total";
        family(&mut out, name, "counter", "Drifts declared, by subsystem and by the severity they were graded.");
        for ((subsystem, severity), n) in &s.anomalies {
            sample(&mut out, name, &[("subsystem", subsystem), ("severity", severity)], &n.to_string());
        }

        if let Some(series) = &s.workload_anomalies {
            let name = "fdir_workload_anomalies_total";
            family(
                &mut out,
                name,
                "counter",
                "Drifts declared, by the workload of the process (unit, container, pod) and subsystem.",
            );
            for ((unit, container, pod, subsystem), n) in series {
                let labels = [
                    ("unit", unit.as_str()),
                    ("container", container.as_str()),
                    ("pod", pod.as_str()),
                    ("subsystem", *subsystem),
                ];
                sample(&mut out, name, &labels, &n.to_string());
            }
        }

        let name = "fdir_recoveries_total";
        family(&mut out, name, "counter", "Drifted subsystems back at their baseline.");
        for (subsystem, n) in &s.recoveries {
            sample(&mut out, name, &[("subsystem", subsystem)], &n.to_string());
        }

        let name = "fdir_actions_total";
        family(&mut out, name, "counter", "Responses taken (successful or not), by drift severity and action.");
        for ((severity, action), n) in &s.actions {
            sample(&mut out, name, &[("severity", severity), ("action", action)], &n.taken.to_string());
        }
        let name = "fdir_action_failures_total";
        family(&mut out, name, "counter", "Responses that failed, by drift severity and action.");
        for ((severity, action), n) in &s.actions {
            sample(&mut out, name, &[("severity", severity), ("action", action)], &n.failed.to_string());
        }

        counter(
            &mut out,
            "fdir_selftest_failures_total",
            "Failed SHA-256 known-answer self-tests of the monitor.",
            s.selftest_failures,
        );
        counter(
            &mut out,
            "fdir_baseline_repairs_total",
            "In-memory baseline copies outvoted and repaired.",
            s.baseline_repairs,
        );
        drop(s);
        if let Some(t) = self.triggers.get() {
            t.render(&mut out);
        }
        out
    }
}

/// Writes the `# HELP` and `# TYPE` lines of a family.
pub(super) fn family(out: &mut String, name: &str, kind: &str, help: &str) {
    out.push_str("# HELP ");
    out.push_str(name);
    out.push(' ');
    for c in help.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out.push_str("\n# TYPE ");
    out.push_str(name);
    out.push(' ');
    out.push_str(kind);
    out.push('\n');
}

/// Writes a family of one unlabelled counter.
pub(super) fn counter(out: &mut String, name: &str, help: &str, value: u64) {
    family(out, name, "counter", help);
    sample(out, name, &[], &value.to_string());
}

/// Writes one sample line: `name{label="value",...} value`.
pub(super) fn sample(out: &mut String, name: &str, labels: &[(&str, &str)], value: &str) {
    out.push_str(name);
    if !labels.is_empty() {
        out.push('{');
        for (i, (label, v)) in labels.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            out.push_str(label);
            out.push_str("=\"");
            escape_label_value(out, v);
            out.push('"');
        }
        out.push('}');
    }
    out.push(' ');
    out.push_str(value);
    out.push('\n');
}

/// Escapes a label value as the exposition format requires: backslash,
/// double quote and line feed.
pub(super) fn escape_label_value(out: &mut String, value: &str) {
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
}

/// A float as the exposition format spells it (`+Inf`, `-Inf`, `NaN`, or the
/// shortest decimal that reads back as the same value).
pub(super) fn float(v: f64) -> String {
    if v.is_nan() {
        "NaN".to_owned()
    } else if v == f64::INFINITY {
        "+Inf".to_owned()
    } else if v == f64::NEG_INFINITY {
        "-Inf".to_owned()
    } else {
        v.to_string()
    }
}
