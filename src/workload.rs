//! The workload a process belongs to, named from its cgroup path: the
//! systemd unit or scope, the container (runtime and id), the Kubernetes pod
//! (uid and QoS class). Pure functions of the text of `/proc/PID/cgroup`
//! (or of a `cgroups` baseline's records); no I/O, no daemon's API.
//!
//! The path is the one the kernel shows in fdir's cgroup namespace. The
//! forms recognised, per runtime (tests hold a real path of each):
//!
//! | runtime | systemd driver (v2, or v1 `name=systemd`) | cgroupfs driver (v1) |
//! |---|---|---|
//! | systemd | `/system.slice/nginx.service`, `/user.slice/user-1000.slice/session-3.scope`, `.../user@1000.service/app.slice/foo.service` | |
//! | Docker | `/system.slice/docker-<id>.scope` | `/docker/<id>` |
//! | containerd (CRI) | `.../kubepods-burstable-pod<uid>.slice/cri-containerd-<id>.scope` | `/kubepods/burstable/pod<uid>/<id>` |
//! | CRI-O | `.../crio-<id>.scope` (`crio-conmon-<id>.scope` is its monitor, not the container) | `/kubepods/.../pod<uid>/crio-<id>` |
//! | Podman | `/machine.slice/libpod-<id>.scope`, rootless under `user@UID.service` | `/libpod_parent/libpod-<id>` |
//! | LXC / LXD | `/lxc.payload.<name>` | `/lxc/<name>` |
//! | systemd-nspawn | `/machine.slice/systemd-nspawn@<name>.service/payload` | |
//!
//! A pod uid in a systemd slice has its `-` written `_`
//! (`kubepods-besteffort-pod1f2e_..._9a.slice`); it is given back with `-`.
//! A pod with no QoS slice is `guaranteed`. The innermost container wins (a
//! pod inside a node that is itself a container, as kind runs them); the
//! unit is the innermost `.service` or `.scope` that is not a container's.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::canon::Record;

/// The workload of a process. Every field is optional: a process in the
/// root cgroup has none.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Workload {
    /// The systemd unit or scope (`nginx.service`, `session-3.scope`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unit: Option<String>,
    /// The container's id (Docker, containerd, CRI-O, Podman: hex) or name (LXC).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container: Option<String>,
    /// The container runtime: `docker`, `containerd`, `crio`, `podman`,
    /// `lxc`, `nspawn` (absent where the path does not say, as in
    /// `/kubepods/burstable/pod<uid>/<id>`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub runtime: Option<String>,
    /// The Kubernetes pod's uid.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pod: Option<String>,
    /// The pod's QoS class: `guaranteed`, `burstable`, `besteffort`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub qos: Option<String>,
}

impl Workload {
    /// Whether nothing is known.
    pub fn is_empty(&self) -> bool {
        self.unit.is_none() && self.container.is_none() && self.pod.is_none()
    }

    /// The workload of one cgroup path (`/system.slice/nginx.service`).
    pub fn from_path(path: &str) -> Workload {
        let mut w = Workload::default();
        let mut in_kubepods = false;
        let mut parent = "";
        for part in path.split('/').filter(|p| !p.is_empty()) {
            let under = std::mem::replace(&mut parent, part);
            // cgroupfs drivers: `/docker/<id>`, `/lxc/<name>`.
            if under == "docker" && is_id(part) || under == "lxc" && !part.is_empty() {
                w.runtime = Some(under.to_owned());
                w.container = Some(part.to_owned());
                w.unit = None;
                continue;
            }
            if part == "kubepods" || part == "kubepods.slice" {
                in_kubepods = true;
                w.qos = Some("guaranteed".into());
                continue;
            }
            if in_kubepods && let Some(qos) = qos_of(part) {
                w.qos = Some(qos.into());
                continue;
            }
            if in_kubepods && let Some(uid) = pod_of(part) {
                w.pod = Some(uid);
                continue;
            }
            if let Some((runtime, id)) = container_of(part, in_kubepods && w.pod.is_some()) {
                w.runtime = runtime.map(str::to_owned);
                w.container = Some(id.to_owned());
                // What was named outside the container is the host's.
                w.unit = None;
                continue;
            }
            if (part.ends_with(".service") || part.ends_with(".scope")) && !part.starts_with("user@") {
                w.unit = Some(part.to_owned());
            }
        }
        if w.pod.is_none() {
            w.qos = None;
        }
        w
    }

    /// The workload of a `/proc/PID/cgroup` text: of the path that says the
    /// most (a container over a unit over nothing), the unified (v2) path
    /// first, then `name=systemd`, then the others in file order.
    pub fn from_cgroup(text: &[u8]) -> Workload {
        let text = String::from_utf8_lossy(text);
        best(text.lines().filter_map(|line| {
            let mut parts = line.splitn(3, ':');
            let (_, controllers, path) = (parts.next()?, parts.next()?, parts.next()?);
            Some((controllers, path.to_owned()))
        }))
    }

    /// The workload from the records of a `cgroups` baseline (`thread` →
    /// `memory=/a; pids=/; unified=/`), without reading anything: of the
    /// first thread's tuple.
    pub fn from_cgroup_records(records: &[Record]) -> Option<Workload> {
        Some(best(members(records.iter().find(|r| r.key == "thread")?)))
    }

    /// The text form, for people: `nginx.service`, `docker:3f2a1b9c0d4e`,
    /// `pod 1f2e3d4c-... containerd:3f2a1b9c0d4e`.
    pub fn tag(&self) -> String {
        let mut parts = Vec::new();
        if let Some(pod) = &self.pod {
            parts.push(format!("pod {pod}"));
        }
        if let Some(id) = &self.container {
            let short: String = if id.len() == 64 { id.chars().take(12).collect() } else { id.clone() };
            parts.push(match &self.runtime {
                Some(r) => format!("{r}:{short}"),
                None => format!("container:{short}"),
            });
        }
        if let Some(unit) = &self.unit {
            parts.push(unit.clone());
        }
        parts.join(" ")
    }
}

impl fmt::Display for Workload {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.tag())
    }
}

/// The (hierarchy, path) pairs of one `thread` record of a `cgroups`
/// baseline, with the v2 hierarchy named as in `/proc/PID/cgroup` (empty).
fn members(record: &Record) -> impl Iterator<Item = (&str, String)> + '_ {
    crate::canon::cgroup::members(&record.value).map(|(name, path)| (if name == "unified" { "" } else { name }, path))
}

/// How much a workload says: a container (and pod) over a unit over nothing.
fn rank(w: &Workload) -> u8 {
    match (w.container.is_some() || w.pod.is_some(), w.unit.is_some()) {
        (true, _) => 2,
        (false, true) => 1,
        (false, false) => 0,
    }
}

/// The workload of the path that says the most, in the order of preference:
/// unified, `name=systemd`, then the others by hierarchy name (and path),
/// so that a file and the sorted records of a baseline choose alike.
fn best(paths: impl Iterator<Item = (impl AsRef<str>, String)>) -> Workload {
    let mut found: Vec<(u8, u8, String, String, Workload)> = paths
        .map(|(controllers, path)| {
            let controllers = controllers.as_ref().to_owned();
            let order = match controllers.as_str() {
                "" => 0,
                "name=systemd" => 1,
                _ => 2,
            };
            let w = Workload::from_path(&path);
            (2 - rank(&w), order, controllers, path, w)
        })
        .collect();
    found.sort_unstable_by(|a, b| (a.0, a.1, &a.2, &a.3).cmp(&(b.0, b.1, &b.2, &b.3)));
    found.into_iter().next().map(|(.., w)| w).unwrap_or_default()
}

fn qos_of(part: &str) -> Option<&'static str> {
    match part.strip_suffix(".slice").map_or(part, |p| p.strip_prefix("kubepods-").unwrap_or(p)) {
        "burstable" => Some("burstable"),
        "besteffort" => Some("besteffort"),
        _ => None,
    }
}

/// `pod<uid>` (cgroupfs) or `kubepods[-qos]-pod<uid_with_underscores>.slice`.
fn pod_of(part: &str) -> Option<String> {
    let uid = match part.strip_suffix(".slice") {
        Some(slice) => slice.rsplit_once("-pod")?.1.replace('_', "-"),
        None => part.strip_prefix("pod")?.to_owned(),
    };
    let ok = uid.len() >= 8 && uid.chars().all(|c| c.is_ascii_hexdigit() || c == '-');
    ok.then_some(uid)
}

fn is_id(s: &str) -> bool {
    (12..=64).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_hexdigit())
}

/// A container's cgroup: the runtime (where the name says) and the id.
/// `in_pod`: directly under a pod's cgroup, where a bare id is a container.
fn container_of(part: &str, in_pod: bool) -> Option<(Option<&'static str>, &str)> {
    if let Some(scope) = part.strip_suffix(".scope") {
        for (prefix, runtime) in
            [("docker-", "docker"), ("cri-containerd-", "containerd"), ("crio-", "crio"), ("libpod-", "podman")]
        {
            if let Some(id) = scope.strip_prefix(prefix).filter(|id| is_id(id)) {
                return Some((Some(runtime), id));
            }
        }
        return None;
    }
    if let Some(name) = part.strip_prefix("lxc.payload.").filter(|n| !n.is_empty()) {
        return Some((Some("lxc"), name));
    }
    if let Some(name) = part.strip_prefix("systemd-nspawn@").and_then(|n| n.strip_suffix(".service")) {
        return Some((Some("nspawn"), name));
    }
    if let Some(id) = part.strip_prefix("crio-").filter(|id| is_id(id)) {
        return Some((Some("crio"), id));
    }
    if let Some(id) = part.strip_prefix("libpod-").filter(|id| is_id(id)) {
        return Some((Some("podman"), id));
    }
    if in_pod && is_id(part) {
        return Some((None, part));
    }
    None
}

/// Which processes a target names by their workload (`--unit`, `--container`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub enum Selector {
    /// A systemd unit, scope or slice anywhere in the process's cgroup path
    /// (`nginx.service`; a name without a suffix is a `.service`).
    Unit(String),
    /// A container whose id (or LXC name) starts with this.
    Container(String),
}

/// The shortest container id prefix a [`Selector::Container`] takes.
pub const MIN_CONTAINER_PREFIX: usize = 4;

impl Selector {
    /// `--unit NAME`: `nginx` is `nginx.service`.
    pub fn unit(name: &str) -> Result<Selector, String> {
        let name = name.trim();
        if name.is_empty() || name.contains('/') {
            return Err(format!("{name:?} is not a unit name (e.g. nginx.service)"));
        }
        Ok(Selector::Unit(if name.contains('.') { name.to_owned() } else { format!("{name}.service") }))
    }

    /// `--container ID`: an id prefix of at least [`MIN_CONTAINER_PREFIX`]
    /// characters, or an LXC container's name.
    pub fn container(id: &str) -> Result<Selector, String> {
        let id = id.trim();
        if id.chars().count() < MIN_CONTAINER_PREFIX || id.contains('/') {
            return Err(format!(
                "{id:?}: give at least {MIN_CONTAINER_PREFIX} characters of the container id (docker ps shows 12)"
            ));
        }
        Ok(Selector::Container(id.to_ascii_lowercase()))
    }

    /// Whether a process with this `/proc/PID/cgroup` text is selected.
    pub fn matches(&self, cgroup: &[u8]) -> bool {
        let text = String::from_utf8_lossy(cgroup);
        match self {
            Selector::Unit(name) => text
                .lines()
                .any(|line| line.splitn(3, ':').nth(2).is_some_and(|path| path.split('/').any(|part| part == name))),
            Selector::Container(prefix) => {
                Workload::from_cgroup(cgroup).container.is_some_and(|id| id.to_ascii_lowercase().starts_with(prefix))
            }
        }
    }
}

impl Selector {
    /// Whether a process whose `cgroups` baseline holds these records is
    /// selected (any of its threads' tuples).
    pub fn matches_records(&self, records: &[Record]) -> bool {
        records.iter().filter(|r| r.key == "thread").any(|r| {
            let text: String = members(r).map(|(name, path)| format!("0:{name}:{path}\n")).collect();
            self.matches(text.as_bytes())
        })
    }
}

impl fmt::Display for Selector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Selector::Unit(name) => write!(f, "unit {name}"),
            Selector::Container(id) => write!(f, "container {id}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "3f2a1b9c0d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8";
    const POD: &str = "1f2e3d4c-5b6a-4978-8695-a4b3c2d1e0f9";

    fn w(
        unit: Option<&str>,
        runtime: Option<&str>,
        container: Option<&str>,
        pod: Option<&str>,
        qos: Option<&str>,
    ) -> Workload {
        let s = |v: Option<&str>| v.map(str::to_owned);
        Workload { unit: s(unit), container: s(container), runtime: s(runtime), pod: s(pod), qos: s(qos) }
    }

    /// Real paths, per runtime and driver: the workload each names.
    #[test]
    fn paths_of_each_runtime() {
        let pod_ = POD.replace('-', "_");
        let table: Vec<(String, Workload)> = vec![
            // Nothing: the root, slices only, a harness's own cgroup.
            ("/".into(), Workload::default()),
            ("/system.slice".into(), Workload::default()),
            ("/process_api/18e340429335231421c44b7c882e8a0e".into(), Workload::default()),
            // systemd.
            ("/system.slice/nginx.service".into(), w(Some("nginx.service"), None, None, None, None)),
            (
                "/system.slice/system-getty.slice/getty@tty1.service".into(),
                w(Some("getty@tty1.service"), None, None, None, None),
            ),
            ("/user.slice/user-1000.slice/session-3.scope".into(), w(Some("session-3.scope"), None, None, None, None)),
            (
                "/user.slice/user-1000.slice/user@1000.service/app.slice/app-gnome-firefox-4242.scope".into(),
                w(Some("app-gnome-firefox-4242.scope"), None, None, None, None),
            ),
            (
                "/user.slice/user-1000.slice/user@1000.service/init.scope".into(),
                w(Some("init.scope"), None, None, None, None),
            ),
            ("/user.slice/user-1000.slice/user@1000.service".into(), Workload::default()),
            // Docker: systemd driver (v2 and v1 name=systemd), cgroupfs driver.
            (format!("/system.slice/docker-{ID}.scope"), w(None, Some("docker"), Some(ID), None, None)),
            (format!("/docker/{ID}"), w(None, Some("docker"), Some(ID), None, None)),
            // containerd under Kubernetes, systemd driver: each QoS class.
            (
                format!(
                    "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod{pod_}.slice/cri-containerd-{ID}.scope"
                ),
                w(None, Some("containerd"), Some(ID), Some(POD), Some("burstable")),
            ),
            (
                format!(
                    "/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod{pod_}.slice/cri-containerd-{ID}.scope"
                ),
                w(None, Some("containerd"), Some(ID), Some(POD), Some("besteffort")),
            ),
            (
                format!("/kubepods.slice/kubepods-pod{pod_}.slice/cri-containerd-{ID}.scope"),
                w(None, Some("containerd"), Some(ID), Some(POD), Some("guaranteed")),
            ),
            // The pod's cgroup itself (its pause process's parent).
            (
                format!("/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod{pod_}.slice"),
                w(None, None, None, Some(POD), Some("burstable")),
            ),
            // cgroupfs driver (v1): the runtime is not in the path.
            (format!("/kubepods/burstable/pod{POD}/{ID}"), w(None, None, Some(ID), Some(POD), Some("burstable"))),
            (format!("/kubepods/besteffort/pod{POD}/{ID}"), w(None, None, Some(ID), Some(POD), Some("besteffort"))),
            (format!("/kubepods/pod{POD}/{ID}"), w(None, None, Some(ID), Some(POD), Some("guaranteed"))),
            // CRI-O: the container, and its monitor (conmon), which is not one.
            (
                format!("/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod{pod_}.slice/crio-{ID}.scope"),
                w(None, Some("crio"), Some(ID), Some(POD), Some("burstable")),
            ),
            (
                format!(
                    "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod{pod_}.slice/crio-conmon-{ID}.scope"
                ),
                w(Some(&format!("crio-conmon-{ID}.scope")), None, None, Some(POD), Some("burstable")),
            ),
            (
                format!("/kubepods/burstable/pod{POD}/crio-{ID}"),
                w(None, Some("crio"), Some(ID), Some(POD), Some("burstable")),
            ),
            // Podman: root (systemd), rootless, split, cgroupfs.
            (format!("/machine.slice/libpod-{ID}.scope"), w(None, Some("podman"), Some(ID), None, None)),
            (
                format!("/user.slice/user-1000.slice/user@1000.service/user.slice/libpod-{ID}.scope"),
                w(None, Some("podman"), Some(ID), None, None),
            ),
            (format!("/machine.slice/libpod-{ID}.scope/container"), w(None, Some("podman"), Some(ID), None, None)),
            (format!("/libpod_parent/libpod-{ID}"), w(None, Some("podman"), Some(ID), None, None)),
            (
                format!("/machine.slice/libpod-conmon-{ID}.scope"),
                w(Some(&format!("libpod-conmon-{ID}.scope")), None, None, None, None),
            ),
            // LXC / LXD.
            ("/lxc.payload.web1".into(), w(None, Some("lxc"), Some("web1"), None, None)),
            (
                "/lxc.payload.web1/system.slice/nginx.service".into(),
                w(Some("nginx.service"), Some("lxc"), Some("web1"), None, None),
            ),
            ("/lxc/web1".into(), w(None, Some("lxc"), Some("web1"), None, None)),
            ("/lxc.monitor.web1".into(), Workload::default()),
            // systemd-nspawn.
            (
                "/machine.slice/systemd-nspawn@deb.service/payload".into(),
                w(None, Some("nspawn"), Some("deb"), None, None),
            ),
            // kind: a pod inside a node that is a Docker container.
            (
                format!(
                    "/system.slice/docker-{ID}.scope/kubelet.slice/kubelet-kubepods.slice/kubelet-kubepods-besteffort.slice"
                ),
                w(None, Some("docker"), Some(ID), None, None),
            ),
        ];
        for (path, want) in table {
            assert_eq!(Workload::from_path(&path), want, "{path}");
        }
    }

    #[test]
    fn docker_cgroupfs_driver() {
        // `/docker/<id>`: Docker's cgroupfs driver (v1, and v2 without systemd).
        let got = Workload::from_path(&format!("/docker/{ID}"));
        assert_eq!(got, w(None, Some("docker"), Some(ID), None, None));
    }

    #[test]
    fn whole_files_v1_v2_and_hybrid() {
        // v2 only.
        let v2 = format!("0::/system.slice/docker-{ID}.scope\n");
        assert_eq!(Workload::from_cgroup(v2.as_bytes()).container.as_deref(), Some(ID));
        // v1, Docker's cgroupfs driver: every controller.
        let v1 = format!("12:pids:/docker/{ID}\n11:memory:/docker/{ID}\n1:name=systemd:/docker/{ID}\n");
        assert_eq!(Workload::from_cgroup(v1.as_bytes()).runtime.as_deref(), Some("docker"));
        // Hybrid: the unit from name=systemd and unified, a harness's cgroup in memory.
        let hybrid =
            "9:name=systemd:/system.slice/nginx.service\n4:memory:/process_api/18e3\n0::/system.slice/nginx.service\n";
        assert_eq!(Workload::from_cgroup(hybrid.as_bytes()), w(Some("nginx.service"), None, None, None, None));
        // A container says more than a unit, wherever it is.
        let mixed = format!("4:memory:/docker/{ID}\n0::/system.slice/docker.service\n");
        assert_eq!(Workload::from_cgroup(mixed.as_bytes()).container.as_deref(), Some(ID));
        // Nothing, or garbage: no workload, no panic.
        assert!(Workload::from_cgroup(b"0::/\n").is_empty());
        assert_eq!(Workload::from_cgroup(b"\xff\x00::\n:::/x.service").unit.as_deref(), Some("x.service"));
        assert!(Workload::from_cgroup(b"").is_empty());
    }

    #[test]
    fn from_the_records_of_a_cgroups_baseline() {
        let mut canon = crate::canon::Canon::default();
        let text =
            format!("9:name=systemd:/system.slice/crio-{ID}.scope\n8:pids:/\n0::/system.slice/crio-{ID}.scope\n");
        crate::canon::cgroup::canonicalize_thread(text.as_bytes(), &mut canon).unwrap();
        let records = canon.records();
        let got = Workload::from_cgroup_records(&records).unwrap();
        assert_eq!(got, w(None, Some("crio"), Some(ID), None, None));
        // An escaped unit name comes back as the kernel wrote it.
        let mut canon = crate::canon::Canon::default();
        let text = "0::/system.slice/systemd-fsck@dev-disk-by\\x2duuid-ab.service\n";
        crate::canon::cgroup::canonicalize_thread(text.as_bytes(), &mut canon).unwrap();
        let got = Workload::from_cgroup_records(&canon.records()).unwrap();
        assert_eq!(got.unit.as_deref(), Some("systemd-fsck@dev-disk-by\\x2duuid-ab.service"));
        assert!(Workload::from_cgroup_records(&[]).is_none());
    }

    #[test]
    fn tags_for_people() {
        assert_eq!(w(Some("nginx.service"), None, None, None, None).tag(), "nginx.service");
        assert_eq!(w(None, Some("docker"), Some(ID), None, None).tag(), "docker:3f2a1b9c0d4e");
        assert_eq!(w(None, Some("lxc"), Some("web1"), None, None).tag(), "lxc:web1");
        assert_eq!(
            w(None, Some("containerd"), Some(ID), Some(POD), Some("burstable")).tag(),
            format!("pod {POD} containerd:3f2a1b9c0d4e")
        );
        assert_eq!(w(None, None, Some(ID), None, None).tag(), "container:3f2a1b9c0d4e");
    }

    #[test]
    fn selectors() {
        let file = format!("9:name=systemd:/system.slice/docker-{ID}.scope\n0::/system.slice/docker-{ID}.scope\n");
        assert!(Selector::container("3f2a").unwrap().matches(file.as_bytes()));
        assert!(Selector::container("3F2A1B").unwrap().matches(file.as_bytes()));
        assert!(!Selector::container("3f2b").unwrap().matches(file.as_bytes()));
        assert!(Selector::container("3f2").is_err());
        assert!(Selector::container("").is_err());
        let nginx = b"0::/system.slice/nginx.service\n";
        assert!(Selector::unit("nginx").unwrap().matches(nginx));
        assert!(Selector::unit("nginx.service").unwrap().matches(nginx));
        assert!(Selector::unit("system.slice").unwrap().matches(nginx));
        assert!(!Selector::unit("nginx.socket").unwrap().matches(nginx));
        assert!(!Selector::unit("ngin").unwrap().matches(nginx));
        assert!(Selector::unit("").is_err());
        assert!(Selector::unit("a/b").is_err());
        // A user manager's units are under its unit.
        let user = b"0::/user.slice/user-1000.slice/user@1000.service/app.slice/foo.service\n";
        assert!(Selector::unit("user@1000.service").unwrap().matches(user));
        assert!(Selector::unit("foo").unwrap().matches(user));
        assert_eq!(Selector::unit("nginx").unwrap().to_string(), "unit nginx.service");
    }

    #[test]
    fn never_panics_on_odd_paths() {
        for p in [
            "",
            "/",
            "//",
            "/kubepods",
            "/kubepods/pod",
            "/kubepods.slice/-pod.slice",
            "/lxc.payload.",
            "/.scope",
            "/docker-.scope",
        ] {
            let _ = Workload::from_path(p);
        }
    }

    mod properties {
        use super::*;
        use proptest::prelude::*;

        /// Path components of every runtime, and odd ones.
        fn part() -> impl Strategy<Value = String> {
            prop_oneof![
                Just("system.slice".to_owned()),
                Just("kubepods.slice".to_owned()),
                Just("kubepods".to_owned()),
                Just("burstable".to_owned()),
                Just("kubepods-besteffort.slice".to_owned()),
                Just(format!("kubepods-burstable-pod{}.slice", POD.replace('-', "_"))),
                Just(format!("pod{POD}")),
                Just(format!("docker-{ID}.scope")),
                Just(format!("cri-containerd-{ID}.scope")),
                Just(format!("crio-{ID}")),
                Just(format!("libpod-{ID}.scope")),
                Just("docker".to_owned()),
                Just("lxc".to_owned()),
                Just("lxc.payload.web1".to_owned()),
                Just(ID.to_owned()),
                Just("nginx.service".to_owned()),
                Just("user@1000.service".to_owned()),
                Just("a;b\\x3b\\c.scope".to_owned()),
                "[a-z0-9@._;\\\\-]{0,12}",
            ]
        }

        fn file() -> impl Strategy<Value = String> {
            let line = (
                prop_oneof![Just(""), Just("name=systemd"), Just("pids"), Just("memory")],
                proptest::collection::vec(part(), 0..6),
            );
            proptest::collection::vec(line, 1..4).prop_map(|lines| {
                lines.iter().enumerate().map(|(i, (c, parts))| format!("{i}:{c}:/{}\n", parts.join("/"))).collect()
            })
        }

        proptest! {
            #![proptest_config(ProptestConfig { cases: 500, ..ProptestConfig::default() })]

            /// Never a panic, whatever the bytes.
            #[test]
            fn any_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
                let _ = Workload::from_cgroup(&bytes);
                let _ = Selector::Unit("a.service".into()).matches(&bytes);
                let _ = Selector::Container("abcd".into()).matches(&bytes);
            }

            /// A baseline's records name the workload the file names, and a
            /// selector takes the same processes from either: a resumed check
            /// labels and restricts as a fresh read does.
            #[test]
            fn records_say_what_the_file_says(text in file(), unit in part()) {
                let mut canon = crate::canon::Canon::default();
                crate::canon::cgroup::canonicalize_thread(text.as_bytes(), &mut canon).unwrap();
                let records = canon.records();
                // v2 and v1 lines: the records hold them by hierarchy name, sorted.
                prop_assert_eq!(Workload::from_cgroup_records(&records).map(|w| w.tag()), Some(Workload::from_cgroup(text.as_bytes()).tag()));
                if let Ok(selector) = Selector::unit(&unit) {
                    prop_assert_eq!(selector.matches_records(&records), selector.matches(text.as_bytes()));
                }
            }
        }
    }
}
