//! End to end against a real Prometheus server (the `prometheus` binary of
//! Debian's package, which `.ci/run` installs): `fdir watch --metrics` on a
//! live child, Prometheus scraping it on loopback with the repo's alert rules
//! loaded, a real drift of the child, and the drift seen through Prometheus's
//! HTTP API, as `fdir_anomalies_total` and as the `FdirDriftLogged` alert.
//! All the while, five clients that send half a request and stall hold
//! connections to fdir's metrics port (one the server ends is replaced at
//! once): a server answering one client at a time never answers a scrape
//! within Prometheus's 1 s timeout (tried: no scrape within the deadline).
//!
//! Everything listens on 127.0.0.1 only; nothing leaves the machine. Both
//! servers and the child are killed and reaped, and their temporary
//! directory removed, whether the test passes or fails.

use crate::common;

use std::fmt::Write as _;
use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use common::Testee;
use common::command::free_port;
use serde_json::Value;

const TEST: &str = "prometheus_sees_a_live_drift_and_fires_its_alert";

/// The longest any one step may take (servers ready, first scrape, the drift
/// in a query, the alert). A healthy run takes a few seconds in all; the
/// margin is for a loaded machine.
const STEP: Duration = Duration::from_secs(30);

/// Starting a server on a port that was free a moment ago can still lose a
/// race with another program: it is retried on another port this many times.
const PORT_ATTEMPTS: usize = 5;

/// The `prometheus` server binary: from PATH, or Debian's `/usr/bin/prometheus`.
fn prometheus_binary() -> Option<PathBuf> {
    std::env::var_os("PATH")
        .and_then(|path| std::env::split_paths(&path).map(|dir| dir.join("prometheus")).find(|p| p.is_file()))
        .or_else(|| Some(PathBuf::from("/usr/bin/prometheus")).filter(|p| p.is_file()))
}

/// A child process with its output in a log file; killed and reaped on drop.
struct Proc {
    child: Child,
    /// Where its stderr (and, for Prometheus, its stdout) goes.
    log: PathBuf,
}

impl Proc {
    fn spawn(name: &'static str, mut cmd: Command, stdout: &Path, log: &Path) -> Proc {
        let err = File::create(log).unwrap();
        let out = if stdout == log { err.try_clone().unwrap() } else { File::create(stdout).unwrap() };
        let child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::from(out))
            .stderr(Stdio::from(err))
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {name} ({cmd:?}): {e}"));
        Proc { child, log: log.to_owned() }
    }

    /// Its exit status, if it has exited.
    fn exited(&mut self) -> Option<ExitStatus> {
        self.child.try_wait().unwrap()
    }

    /// The last `lines` lines of its log.
    fn log_tail(&self, lines: usize) -> String {
        tail(&self.log, lines)
    }

    /// Sends SIGTERM and waits up to `grace` for it to exit.
    fn terminate(&mut self, grace: Duration) -> Option<ExitStatus> {
        // SAFETY: kill on our own child's pid, which we have not reaped yet.
        unsafe { libc::kill(i32::try_from(self.child.id()).unwrap(), libc::SIGTERM) };
        let deadline = Instant::now() + grace;
        while Instant::now() < deadline {
            if let Some(status) = self.exited() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn tail(path: &Path, lines: usize) -> String {
    let text = fs::read_to_string(path).unwrap_or_else(|e| format!("(cannot read {}: {e})", path.display()));
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// fdir's events for a failure report: all but the `check` summaries, which
/// come five a second, and the last of those.
fn events_summary(path: &Path) -> String {
    let text = fs::read_to_string(path).unwrap_or_else(|e| format!("(cannot read {}: {e})", path.display()));
    let is_check = |l: &&str| l.contains(r#""event":"check""#);
    let mut lines: Vec<&str> = text.lines().filter(|l| !is_check(l)).collect();
    lines.extend(text.lines().rfind(is_check));
    lines.join("\n")
}

/// `GET path` over plain HTTP/1.0 on 127.0.0.1:`port`: the status code and
/// the body. HTTP/1.0 makes both servers close the connection after the
/// response, with no chunked encoding, so reading to the end is the body.
fn http_get(port: u16, path: &str) -> io::Result<(u16, String)> {
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(2))?;
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    stream.set_write_timeout(Some(Duration::from_secs(10)))?;
    write!(stream, "GET {path} HTTP/1.0\r\nHost: 127.0.0.1:{port}\r\nAccept: */*\r\n\r\n")?;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw)?;
    let text = String::from_utf8_lossy(&raw);
    let bad = |what: &str| io::Error::new(io::ErrorKind::InvalidData, format!("{what}: {text:?}"));
    let (head, body) = text.split_once("\r\n\r\n").ok_or_else(|| bad("no end of headers"))?;
    let status = head.split(' ').nth(1).and_then(|s| s.parse().ok()).ok_or_else(|| bad("no status"))?;
    Ok((status, body.to_owned()))
}

/// Percent-encodes a query-string value (everything but RFC 3986's unreserved characters).
fn urlencode(s: &str) -> String {
    let mut out = String::with_capacity(s.len() * 3);
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(char::from(b));
        } else {
            write!(out, "%{b:02X}").unwrap();
        }
    }
    out
}

/// Polls `f` every 200 ms until it returns `Some`, for at most [`STEP`].
/// `f` records what it last saw in its `String` argument; on timeout, that is
/// the error, for the failure report.
fn poll<T>(mut f: impl FnMut(&mut String) -> Option<T>) -> Result<T, String> {
    let start = Instant::now();
    let mut last = String::from("(nothing yet)");
    while start.elapsed() < STEP {
        if let Some(v) = f(&mut last) {
            return Ok(v);
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    Err(last)
}

/// The running pieces, for diagnostics.
struct Rig {
    dir: PathBuf,
    fdir: Proc,
    fdir_port: u16,
    prometheus: Proc,
    prom_port: u16,
}

impl Rig {
    /// What a failure report needs: both processes' state and logs, fdir's
    /// last events and Prometheus's view of its scrape target.
    fn diagnostics(&mut self) -> String {
        let fdir_state = format!("{:?}", self.fdir.exited());
        let prom_state = format!("{:?}", self.prometheus.exited());
        let targets = http_get(self.prom_port, "/api/v1/targets")
            .map_or_else(|e| format!("(cannot ask: {e})"), |(code, body)| format!("{code} {body}"));
        format!(
            "--- fdir on 127.0.0.1:{} (exited: {fdir_state}), stderr:\n{}\n--- fdir's events (checks but the last left out):\n{}\n\
             --- prometheus on 127.0.0.1:{} (exited: {prom_state}), log:\n{}\n--- /api/v1/targets: {targets}",
            self.fdir_port,
            self.fdir.log_tail(40),
            events_summary(&self.dir.join("events.ndjson")),
            self.prom_port,
            self.prometheus.log_tail(40),
        )
    }

    /// Runs an instant query; its `data.result` array. Any failure is
    /// described in `last` and gives `None`.
    fn query(&mut self, promql: &str, last: &mut String) -> Option<Vec<Value>> {
        self.assert_running();
        let answer = http_get(self.prom_port, &format!("/api/v1/query?query={}", urlencode(promql)));
        *last = match &answer {
            Ok((code, body)) => format!("{promql}: {code} {body}"),
            Err(e) => format!("{promql}: {e}"),
        };
        let (200, body) = answer.ok()? else { return None };
        let v: Value = serde_json::from_str(&body).ok()?;
        (v["status"] == "success").then_some(())?;
        v["data"]["result"].as_array().cloned()
    }

    /// The value of the single series an instant query returns.
    fn query_value(&mut self, promql: &str, last: &mut String) -> Option<f64> {
        let result = self.query(promql, last)?;
        match result.as_slice() {
            [one] => one["value"][1].as_str()?.parse().ok(),
            _ => None,
        }
    }

    /// Fails at once (not at a timeout) when a server has died.
    fn assert_running(&mut self) {
        if self.fdir.exited().is_some() || self.prometheus.exited().is_some() {
            panic!("a server exited during the test\n{}", self.diagnostics());
        }
    }
}

/// Starts `fdir watch --metrics` on `pid` and waits until it serves metrics.
fn start_fdir(dir: &Path, pid: u32) -> (Proc, u16) {
    let events = dir.join("events.ndjson");
    for attempt in 1..=PORT_ATTEMPTS {
        let port = free_port();
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_fdir"));
        cmd.args(["watch", "--pid", &pid.to_string(), "--interval", "200ms", "--format", "json"])
            .arg("--metrics")
            .arg(format!("127.0.0.1:{port}"))
            .arg("--baseline")
            .arg(dir.join("b.json"))
            .current_dir(dir);
        let mut fdir = Proc::spawn("fdir", cmd, &events, &dir.join("fdir.stderr"));
        let start = Instant::now();
        loop {
            if let Some(status) = fdir.exited() {
                let err = fdir.log_tail(20);
                if err.contains("in use") && attempt < PORT_ATTEMPTS {
                    break; // lost the port to someone else: another port
                }
                panic!("fdir watch exited ({status}) before serving metrics:\n{err}");
            }
            // The `started` event is written once the metrics port is bound,
            // so the answer below comes from this fdir and not from a
            // program that took the port first.
            let started = fs::read_to_string(&events).unwrap_or_default().contains(r#""event":"started""#);
            if started && let Ok((200, body)) = http_get(port, "/metrics") {
                assert!(body.contains("\nfdir_up 1\n"), "fdir's /metrics: {body}");
                return (fdir, port);
            }
            assert!(
                start.elapsed() < STEP,
                "fdir did not serve metrics on 127.0.0.1:{port} within {STEP:?}\nstderr:\n{}\nevents:\n{}",
                fdir.log_tail(40),
                events_summary(&events)
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    unreachable!("the last attempt panics")
}

/// Writes a Prometheus configuration that scrapes fdir on `fdir_port` every
/// second as job `fdir` and evaluates the repo's alert rules every second.
/// No `alerting` section: alerts stay in Prometheus, nothing is sent anywhere.
fn write_config(dir: &Path, fdir_port: u16) -> PathBuf {
    let rules = Path::new(env!("CARGO_MANIFEST_DIR")).join("dist/prometheus/fdir-rules.yml");
    assert!(rules.is_file(), "{} is missing", rules.display());
    // JSON strings are YAML strings: quoted, whatever the path holds.
    let rules = serde_json::to_string(rules.to_str().unwrap()).unwrap();
    let config = format!(
        "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n  evaluation_interval: 1s\n\
         rule_files:\n  - {rules}\n\
         scrape_configs:\n  - job_name: fdir\n    static_configs:\n      - targets: ['127.0.0.1:{fdir_port}']\n"
    );
    let path = dir.join("prometheus.yml");
    fs::write(&path, config).unwrap();
    path
}

/// Five clients that each send half a request and stall, at all times: one
/// the server has answered (`408` at its timeout) or closed is replaced at
/// once, until dropped.
struct Stallers {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    thread: Option<std::thread::JoinHandle<usize>>,
}

impl Stallers {
    fn start(port: u16) -> Stallers {
        use std::sync::atomic::Ordering;
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let flag = std::sync::Arc::clone(&stop);
        let thread = std::thread::spawn(move || {
            let open = || {
                let mut s = TcpStream::connect((Ipv4Addr::LOCALHOST, port)).ok()?;
                s.write_all(b"GET /metr").ok()?;
                s.set_nonblocking(true).ok()?;
                Some(s)
            };
            let mut opened = 0;
            let mut stalled: Vec<Option<TcpStream>> = (0..5).map(|_| None).collect();
            while !flag.load(Ordering::SeqCst) {
                for slot in &mut stalled {
                    let mut buf = [0u8; 64];
                    let ended = match slot {
                        None => true,
                        Some(s) => !matches!(s.read(&mut buf), Err(e) if e.kind() == io::ErrorKind::WouldBlock),
                    };
                    if ended {
                        *slot = open();
                        opened += usize::from(slot.is_some());
                    }
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            opened
        });
        Stallers { stop, thread: Some(thread) }
    }

    /// Stops them; how many stalled connections were opened in all.
    fn stop(mut self) -> usize {
        self.stop.store(true, std::sync::atomic::Ordering::SeqCst);
        self.thread.take().map_or(0, |t| t.join().unwrap())
    }
}

impl Drop for Stallers {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Starts Prometheus on loopback and waits until it is ready (`/-/ready`).
fn start_prometheus(binary: &Path, dir: &Path, config: &Path) -> (Proc, u16) {
    let data = dir.join("data");
    for attempt in 1..=PORT_ATTEMPTS {
        let port = free_port();
        let _ = fs::remove_dir_all(&data); // a failed attempt's, if any
        let mut cmd = Command::new(binary);
        cmd.arg(format!("--config.file={}", config.display()))
            .arg(format!("--storage.tsdb.path={}", data.display()))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            // Its own URL for alert links, instead of one made of the host
            // name: nothing to resolve.
            .arg(format!("--web.external-url=http://127.0.0.1:{port}/"))
            .arg("--storage.tsdb.retention.time=1h")
            // Few concurrent queries: a smaller query log in the data dir.
            .arg("--query.max-concurrency=4")
            .arg("--log.level=info")
            .current_dir(dir);
        let log = dir.join("prometheus.log");
        let mut prometheus = Proc::spawn("prometheus", cmd, &log, &log);
        let start = Instant::now();
        loop {
            if let Some(status) = prometheus.exited() {
                let log = prometheus.log_tail(20);
                if log.contains("address already in use") && attempt < PORT_ATTEMPTS {
                    break;
                }
                panic!("prometheus exited ({status}) before it was ready:\n{log}");
            }
            if let Ok((200, _)) = http_get(port, "/-/ready") {
                // Ours, and not a server that took the port first: it uses
                // our data directory.
                let (_, flags) = http_get(port, "/api/v1/status/flags").unwrap();
                let flags: Value = serde_json::from_str(&flags).unwrap();
                if flags["data"]["storage.tsdb.path"].as_str() == data.to_str() {
                    return (prometheus, port);
                }
            }
            assert!(
                start.elapsed() < STEP,
                "prometheus was not ready on 127.0.0.1:{port} within {STEP:?}\nlog:\n{}",
                prometheus.log_tail(40)
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
    unreachable!("the last attempt panics")
}

#[test]
fn prometheus_sees_a_live_drift_and_fires_its_alert() {
    let Some(binary) = prometheus_binary() else {
        common::skip(TEST, "the prometheus server is not installed (.ci/run installs Debian's prometheus package)");
        return;
    };
    let began = Instant::now();
    // Dropped last (declared first): the processes below are gone by then.
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();

    let mut t = Testee::spawn();
    let (fdir, fdir_port) = start_fdir(dir, t.pid);
    let stallers = Stallers::start(fdir_port);
    let config = write_config(dir, fdir_port);
    let (prometheus, prom_port) = start_prometheus(&binary, dir, &config);
    let mut rig = Rig { dir: dir.to_owned(), fdir, fdir_port, prometheus, prom_port };
    let ready = began.elapsed();

    // Prometheus has scraped fdir: `up` is 1 and the anomaly counters are
    // there at 0, so the drift below is an increase that `increase()` sees.
    // (The first scrape comes some 5 s after start: Prometheus hands
    // discovered targets to its scrapers at most every 5 s.)
    let instance = format!("127.0.0.1:{fdir_port}");
    let series =
        format!(r#"fdir_anomalies_total{{job="fdir",instance="{instance}",subsystem="seccomp",severity="log"}}"#);
    poll(|last| {
        let up = rig.query_value(r#"up{job="fdir"}"#, last)?;
        if up != 1.0 {
            return None;
        }
        let before = rig.query_value(&series, last)?;
        assert_eq!(before, 0.0, "a drift before the drift:\n{last}");
        Some(())
    })
    .unwrap_or_else(|last| panic!("no scrape of fdir within {STEP:?}\nlast answer: {last}\n{}", rig.diagnostics()));
    let scraped = began.elapsed();

    // A real drift: the child sets no_new_privs, which fdir sees in the
    // seccomp subsystem (NoNewPrivs 0 -> 1) and, one anomaly, grades `log`.
    t.must("nnp");
    let drifted = Instant::now();
    let query = r#"sum(fdir_anomalies_total{subsystem="seccomp"})"#;
    let anomalies = poll(|last| rig.query_value(query, last).filter(|v| *v >= 1.0)).unwrap_or_else(|last| {
        panic!("{query} did not reach 1 within {STEP:?} of the drift\nlast answer: {last}\n{}", rig.diagnostics())
    });
    let to_anomaly = drifted.elapsed();
    assert_eq!(anomalies, 1.0, "one drift, declared once");
    let mut last = String::new();
    assert_eq!(rig.query_value(&series, &mut last), Some(1.0), "the drift is graded log:\n{last}");

    // The same drift on the log pipeline: an `anomaly` event on fdir's stdout.
    let events = fs::read_to_string(dir.join("events.ndjson")).unwrap();
    let anomaly: Value = events
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .find(|v| v["event"] == "anomaly")
        .unwrap_or_else(|| panic!("no anomaly event:\n{events}"));
    assert_eq!(anomaly["pid"], t.pid);
    assert_eq!(anomaly["subsystem"], "seccomp");
    assert_eq!(anomaly["severity"], "log");

    // The repo's rules, evaluated every second by this Prometheus: a drift
    // graded `log` is `FdirDriftLogged`. Its expression is an increase() over
    // 5 m with no `for:`, so it goes straight to firing at the first
    // evaluation after the scrape that saw the drift: there is no pending
    // period to wait out. Its labels are those Alertmanager routes on.
    let alert = poll(|last| {
        rig.assert_running();
        let answer = http_get(prom_port, "/api/v1/alerts");
        *last = format!("/api/v1/alerts: {answer:?}");
        let (200, body) = answer.ok()? else { return None };
        let v: Value = serde_json::from_str(&body).ok()?;
        v["data"]["alerts"]
            .as_array()?
            .iter()
            .find(|a| a["labels"]["alertname"] == "FdirDriftLogged" && a["state"] == "firing")
            .cloned()
    })
    .unwrap_or_else(|last| {
        panic!("FdirDriftLogged did not fire within {STEP:?}\nlast answer: {last}\n{}", rig.diagnostics())
    });
    let to_alert = drifted.elapsed();
    let labels = &alert["labels"];
    assert_eq!(labels["severity"], "info", "{alert}");
    assert_eq!(labels["fdir_severity"], "log", "{alert}");
    assert_eq!(labels["subsystem"], "seccomp", "{alert}");
    assert_eq!(labels["instance"], instance.as_str(), "{alert}");
    assert_eq!(labels["job"], "fdir", "{alert}");
    assert!(alert["annotations"]["summary"].as_str().unwrap().contains("seccomp drift"), "{alert}");
    // No other drift alert: the grade is log, and nothing else drifted.
    let others = rig.query(r#"ALERTS{alertname=~"FdirDrift.*",alertname!="FdirDriftLogged"}"#, &mut last).unwrap();
    assert!(others.is_empty(), "other drift alerts: {last}");

    // The stalled clients were there all along (five at a time).
    let stalled = stallers.stop();
    assert!(stalled >= 5, "{stalled} stalled clients");

    // fdir ends cleanly on SIGTERM (exit 0, a `stopped` event); Prometheus
    // and the child are killed when their guards drop, then the directory
    // is removed.
    let status = rig.fdir.terminate(Duration::from_secs(10));
    assert_eq!(status.and_then(|s| s.code()), Some(0), "fdir on SIGTERM\n{}", rig.diagnostics());
    let events = fs::read_to_string(dir.join("events.ndjson")).unwrap();
    assert!(events.lines().last().unwrap().contains(r#""event":"stopped""#), "{events}");

    eprintln!(
        "prometheus e2e: servers ready after {ready:.1?}, first scrape at {scraped:.1?}; the drift counted \
         {to_anomaly:.1?} and FdirDriftLogged firing {to_alert:.1?} after it; {:.1?} in all; \
         {stalled} stalled clients meanwhile",
        began.elapsed()
    );
}
