//! The fleet files in `dist/` against the metrics fdir exports: the alerting
//! rules, their unit tests and the scrape config checked by `promtool` (when
//! it is installed), the rendered metrics linted by `promtool check metrics`,
//! and the Grafana dashboard checked for shape and for metric names.

use std::collections::BTreeSet;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, SystemTime};

use fdir::metrics::Metrics;
use fdir::{Severity, Subsystem};

fn dist(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("dist").join(rel)
}

/// `promtool` from PATH, if it is installed; if not, says the case is
/// skipped, and counts it in `target/tmp/skipped.txt` (which `.ci/run` prints).
fn promtool(test: &str) -> Option<PathBuf> {
    let found = std::env::var_os("PATH")
        .and_then(|path| std::env::split_paths(&path).map(|dir| dir.join("promtool")).find(|p| p.is_file()));
    if found.is_none() {
        crate::common::skip(test, "promtool not installed (.ci/run installs the prometheus package)");
    }
    found
}

/// Runs promtool with `args` (and `stdin`), and fails the test with its output
/// unless it succeeds.
fn run_promtool(promtool: &Path, args: &[&str], stdin: Option<&str>) -> String {
    let mut child = Command::new(promtool)
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .stdin(if stdin.is_some() { Stdio::piped() } else { Stdio::null() })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    if let Some(input) = stdin {
        child.stdin.take().unwrap().write_all(input.as_bytes()).unwrap();
    }
    let out = child.wait_with_output().unwrap();
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "promtool {args:?} failed ({}):\n{text}", out.status);
    text
}

/// A registry with every kind of series present.
fn busy() -> Metrics {
    let m = Metrics::new();
    m.set_targets(10, 2);
    m.check_done(Duration::from_millis(4), SystemTime::now());
    m.anomaly(Subsystem::Seccomp, Severity::SafeMode);
    m.recovered(Subsystem::Cgroups);
    m.action(Severity::Isolate, "freeze", false);
    m.selftest_failed();
    m.baseline_repaired();
    m.check_failed();
    m
}

/// Every metric name fdir exports: family names and sample names (a
/// histogram's `_bucket`, `_sum`, `_count`).
fn exported() -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    for line in busy().render().lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            names.insert(rest.split(' ').next().unwrap().to_owned());
        } else if !line.starts_with('#') {
            names.insert(line.split(['{', ' ']).next().unwrap().to_owned());
        }
    }
    names
}

/// The `fdir_*` identifiers in `text`.
fn fdir_names(text: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    let bytes = text.as_bytes();
    let word = |b: u8| b.is_ascii_alphanumeric() || b == b'_';
    let mut i = 0;
    while let Some(pos) = text[i..].find("fdir_") {
        let start = i + pos;
        let mut end = start;
        while end < bytes.len() && word(bytes[end]) {
            end += 1;
        }
        if start == 0 || !word(bytes[start - 1]) {
            names.insert(text[start..end].to_owned());
        }
        i = end;
    }
    names
}

/// Label names (not metrics) that the rules add.
const RULE_LABELS: &[&str] = &["fdir_severity"];

#[test]
fn prometheus_rules_pass_promtool() {
    let Some(promtool) = promtool("prometheus_rules_pass_promtool") else {
        return;
    };
    let out = run_promtool(&promtool, &["check", "rules", "dist/prometheus/fdir-rules.yml"], None);
    assert!(out.contains("SUCCESS"), "{out}");
    let out = run_promtool(&promtool, &["test", "rules", "dist/prometheus/fdir-rules.test.yml"], None);
    assert!(out.contains("SUCCESS"), "{out}");
    let out = run_promtool(&promtool, &["check", "config", "dist/prometheus/prometheus.yml"], None);
    assert!(out.contains("SUCCESS"), "{out}");
}

#[test]
fn prometheus_rendered_metrics_pass_promtool_lint() {
    let Some(promtool) = promtool("prometheus_rendered_metrics_pass_promtool_lint") else {
        return;
    };
    for m in [Metrics::new(), busy()] {
        let out = run_promtool(&promtool, &["check", "metrics"], Some(&m.render()));
        assert!(out.trim().is_empty(), "promtool lint findings:\n{out}");
    }
}

#[test]
fn prometheus_rules_name_only_exported_metrics() {
    let exported = exported();
    for file in ["prometheus/fdir-rules.yml", "prometheus/fdir-rules.test.yml"] {
        let text = std::fs::read_to_string(dist(file)).unwrap();
        let names = fdir_names(&text);
        assert!(names.contains("fdir_anomalies_total"), "{file}: {names:?}");
        for name in names {
            assert!(
                exported.contains(&name) || RULE_LABELS.contains(&name.as_str()),
                "{file} names {name}, which fdir does not export ({exported:?})"
            );
        }
    }
}

/// The PromQL expressions of a dashboard: every `expr`, and the queries of
/// the template variables.
fn expressions(value: &serde_json::Value, out: &mut Vec<String>) {
    match value {
        serde_json::Value::Object(map) => {
            for (k, v) in map {
                if let (true, Some(s)) = (k == "expr" || k == "definition", v.as_str()) {
                    out.push(s.to_owned());
                }
                expressions(v, out);
            }
        }
        serde_json::Value::Array(items) => items.iter().for_each(|v| expressions(v, out)),
        _ => {}
    }
}

fn datasources<'a>(value: &'a serde_json::Value, out: &mut Vec<&'a serde_json::Value>) {
    match value {
        serde_json::Value::Object(map) => {
            for (k, v) in map {
                if k == "datasource" {
                    out.push(v);
                }
                datasources(v, out);
            }
        }
        serde_json::Value::Array(items) => items.iter().for_each(|v| datasources(v, out)),
        _ => {}
    }
}

#[test]
fn grafana_dashboard_is_valid_and_names_only_exported_metrics() {
    let text = std::fs::read_to_string(dist("grafana/fdir.json")).unwrap();
    let dash: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert!(dash["schemaVersion"].as_u64().unwrap() >= 36, "schemaVersion");
    assert_eq!(dash["uid"], "fdir-isolation");
    assert_eq!(dash["__inputs"][0]["name"], "DS_PROMETHEUS");
    let vars: Vec<&str> =
        dash["templating"]["list"].as_array().unwrap().iter().map(|v| v["name"].as_str().unwrap()).collect();
    assert_eq!(vars, ["DS_PROMETHEUS", "instance"]);

    // Every panel and query uses the one Prometheus data source (Grafana's
    // built-in annotation source aside).
    let mut sources = Vec::new();
    datasources(&dash["panels"], &mut sources);
    datasources(&dash["templating"], &mut sources);
    assert!(sources.len() > 20);
    for ds in sources {
        assert_eq!(ds["uid"], "${DS_PROMETHEUS}", "{ds}");
        assert_eq!(ds["type"], "prometheus", "{ds}");
    }

    // Panel ids are unique; panels fit the 24-column grid.
    let panels = dash["panels"].as_array().unwrap();
    let ids: BTreeSet<u64> = panels.iter().map(|p| p["id"].as_u64().unwrap()).collect();
    assert_eq!(ids.len(), panels.len());
    for p in panels {
        let g = &p["gridPos"];
        assert!(g["x"].as_u64().unwrap() + g["w"].as_u64().unwrap() <= 24, "{}", p["title"]);
    }

    let mut exprs = Vec::new();
    expressions(&dash, &mut exprs);
    let exported = exported();
    let mut used = BTreeSet::new();
    for e in &exprs {
        let names = fdir_names(e);
        assert!(!names.is_empty(), "an expression without an fdir metric: {e}");
        for name in names {
            assert!(exported.contains(&name), "the dashboard queries {name}, which fdir does not export: {e}");
            used.insert(name);
        }
    }
    // The panels the fleet needs are there.
    for name in [
        "fdir_anomalies_total",
        "fdir_check_duration_seconds_bucket",
        "fdir_checks_total",
        "fdir_targets",
        "fdir_unobservable_targets",
        "fdir_last_check_timestamp_seconds",
        "fdir_selftest_failures_total",
        "fdir_baseline_repairs_total",
        "fdir_action_failures_total",
    ] {
        assert!(used.contains(name), "no panel shows {name}");
    }

    // With promtool, every expression (Grafana's variables filled in) parses
    // as PromQL: checked as the recording rules of a scratch rule file.
    let Some(promtool) = promtool("grafana_dashboard_is_valid_and_names_only_exported_metrics") else {
        return;
    };
    let mut rules = String::from("groups:\n  - name: dashboard\n    rules:\n");
    for (i, e) in exprs.iter().filter(|e| !e.starts_with("label_values(")).enumerate() {
        let e = e.replace("$__rate_interval", "1m").replace("$__range", "1h").replace("$instance", ".*");
        rules.push_str(&format!("      - record: fdir:dashboard:{i}\n        expr: {}\n", serde_json::json!(e)));
    }
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("dashboard-rules.yml");
    std::fs::write(&file, rules).unwrap();
    let out = run_promtool(&promtool, &["check", "rules", file.to_str().unwrap()], None);
    assert!(out.contains("SUCCESS"), "{out}");
}
