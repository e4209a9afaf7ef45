//! Reading a target's subsystems into canonical forms: which files each
//! subsystem needs, read once per check and fed to the pure canonicalizers.
//!
//! Each thread's `status` is read once for both `seccomp` and `credentials`,
//! and `maps` once for both `memory-maps` and `code`.
//! A file that cannot be read makes its subsystem *unobservable* (permission
//! denied, absent on this kernel) or fails the whole observation (the process
//! is gone); it is never read as empty.
//!
//! `seccomp-filters` ([`filters`]) and `code` ([`code`]) have modules of their
//! own: they go beyond reading files (ptrace, `/proc/PID/mem`), and a check of
//! them is compared with its baseline as it is read.

pub(crate) mod code;
pub(crate) mod filters;

use std::fmt::Write as _;

use crate::canon::{Canon, cgroup, maps, status};
use crate::snapshot::Observation;
use crate::{Error, Snapshot, Source, Subsystem};
use code::CodeSweep;
use filters::Stops;

/// The result of observing one subsystem.
#[derive(Debug, Clone)]
pub(crate) enum Slot {
    /// Its canonical form.
    Observed(Canon),
    /// Why it could not be read.
    Unobservable(String),
}

/// Buffers reused from one observation to the next.
#[derive(Debug, Default)]
pub(crate) struct Observer {
    buf: Vec<u8>,
    tids: Vec<u32>,
    rel: String,
    slots: Vec<(Subsystem, Slot)>,
    mappings: Vec<crate::canon::code::CodeMapping>,
    stops: Stops,
}

/// What a check compares against: its baseline, and the code sweep's state.
pub(crate) struct Against<'a> {
    pub(crate) baseline: &'a Snapshot,
    pub(crate) code: &'a mut CodeSweep,
}

/// The reason a subsystem is unobservable, if the error is of that kind
/// (rather than one that fails the whole check).
fn unobservable_reason(e: &Error) -> Option<String> {
    match e {
        Error::PermissionDenied { .. }
        | Error::Traced { .. }
        | Error::NotStopped { .. }
        | Error::NeedsPrivilege { .. }
        | Error::Unsupported(_) => Some(e.to_string()),
        Error::NotFound { path } => Some(format!("{} does not exist on this kernel", path.display())),
        _ => None,
    }
}

/// Which per-thread file a pass reads.
#[derive(Clone, Copy)]
enum ThreadFile {
    Status,
    Cgroup,
}

impl Observer {
    pub(crate) fn new() -> Observer {
        Observer::default()
    }

    /// The results of the last observation, in subsystem order.
    pub(crate) fn slots(&self) -> &[(Subsystem, Slot)] {
        &self.slots
    }

    /// The results of the last observation, to finish digests in place.
    pub(crate) fn slots_mut(&mut self) -> &mut [(Subsystem, Slot)] {
        &mut self.slots
    }

    /// Takes the canonical form of the previous observation of `sub`, to reuse
    /// its buffers.
    fn take_canon(&mut self, sub: Subsystem) -> Canon {
        let mut c = self
            .slots
            .iter_mut()
            .find(|(s, _)| *s == sub)
            .and_then(|(_, slot)| match slot {
                Slot::Observed(c) => Some(std::mem::take(c)),
                Slot::Unobservable(_) => None,
            })
            .unwrap_or_default();
        c.clear();
        c
    }

    /// How long `seccomp-filters` kept threads stopped in the last observation.
    pub(crate) fn stops(&self) -> Stops {
        self.stops
    }

    /// Observes `subsystems` of `src` in full, replacing the previous results.
    pub(crate) fn observe<S: Source + ?Sized>(&mut self, src: &S, subsystems: &[Subsystem]) -> Result<(), Error> {
        self.observe_inner(src, subsystems, None)
    }

    /// Observes `subsystems` of `src` for a check against a baseline: `code`
    /// reads a budget's worth and `seccomp-filters` is made comparable with a
    /// degraded baseline (see [`code`] and [`filters`]).
    pub(crate) fn observe_against<S: Source + ?Sized>(
        &mut self,
        src: &S,
        subsystems: &[Subsystem],
        against: Against<'_>,
    ) -> Result<(), Error> {
        self.observe_inner(src, subsystems, Some(against))
    }

    fn observe_inner<S: Source + ?Sized>(
        &mut self,
        src: &S,
        subsystems: &[Subsystem],
        mut against: Option<Against<'_>>,
    ) -> Result<(), Error> {
        self.stops = Stops::default();
        let mut wanted = subsystems.to_vec();
        wanted.sort_unstable();
        wanted.dedup();
        let mut canons: Vec<(Subsystem, Canon)> = wanted.iter().map(|&s| (s, self.take_canon(s))).collect();
        let mut outcome: Vec<(Subsystem, Option<String>)> = Vec::with_capacity(wanted.len());
        let has = |s| wanted.contains(&s);

        let mut code_maps = false;
        if has(Subsystem::MemoryMaps) || has(Subsystem::Code) {
            match settle(src.read("maps", &mut self.buf))? {
                Some(reason) => {
                    for s in [Subsystem::MemoryMaps, Subsystem::Code] {
                        if has(s) {
                            outcome.push((s, Some(reason.clone())));
                        }
                    }
                }
                None => {
                    if let Some((_, canon)) = canons.iter_mut().find(|(s, _)| *s == Subsystem::MemoryMaps) {
                        let r = self.maps(src, canon);
                        outcome.push((Subsystem::MemoryMaps, settle(r)?));
                    }
                    if has(Subsystem::Code) {
                        self.code_mappings(src)?;
                        code_maps = true;
                    }
                }
            }
        }
        if has(Subsystem::Seccomp)
            || has(Subsystem::Credentials)
            || has(Subsystem::Cgroups)
            || has(Subsystem::SeccompFilters)
        {
            src.threads(&mut self.tids)?;
        }
        if has(Subsystem::Seccomp) || has(Subsystem::Credentials) {
            let r = self.per_thread(src, ThreadFile::Status, &mut canons);
            let reason = settle(r)?;
            for s in [Subsystem::Seccomp, Subsystem::Credentials] {
                if has(s) {
                    outcome.push((s, reason.clone()));
                }
            }
        }
        if has(Subsystem::Cgroups) {
            let r = self.per_thread(src, ThreadFile::Cgroup, &mut canons);
            outcome.push((Subsystem::Cgroups, settle(r)?));
        }
        if let Some((_, canon)) = canons.iter_mut().find(|(s, _)| *s == Subsystem::SeccompFilters) {
            let r = filters::observe(src, &self.tids, &mut self.buf, &mut self.rel, canon, &mut self.stops);
            let mut reason = settle(r)?;
            if reason.is_none()
                && let Some(Observation::Observed { records, .. }) =
                    against.as_ref().and_then(|a| a.baseline.subsystems.get(&Subsystem::SeccompFilters))
            {
                reason = filters::reconcile(records, canon);
            }
            outcome.push((Subsystem::SeccompFilters, reason));
        }
        if code_maps && let Some((_, canon)) = canons.iter_mut().find(|(s, _)| *s == Subsystem::Code) {
            let r = match against.as_mut() {
                None => code::hash_all(src, &self.mappings, canon),
                Some(a) => match a.baseline.subsystems.get(&Subsystem::Code) {
                    Some(Observation::Observed { digest, records }) => {
                        a.code.check(src, &self.mappings, records, *digest, canon)
                    }
                    // Nothing to compare with: do not read the code for nothing.
                    _ => Err(Error::Unsupported("no code baseline to compare with".into())),
                },
            };
            outcome.push((Subsystem::Code, settle(r)?));
        }

        self.slots.clear();
        for (sub, mut canon) in canons {
            let reason = outcome.iter().find(|(s, _)| *s == sub).map(|(_, r)| r.clone());
            let slot = match reason {
                Some(None) => {
                    canon.finish();
                    Slot::Observed(canon)
                }
                Some(Some(reason)) => Slot::Unobservable(reason),
                None => return Err(Error::Bug(format!("{sub} was asked for but not observed"))),
            };
            self.slots.push((sub, slot));
        }
        Ok(())
    }

    /// Canonicalizes the `maps` text in `self.buf`.
    fn maps<S: Source + ?Sized>(&mut self, src: &S, canon: &mut Canon) -> Result<(), Error> {
        maps::canonicalize(&self.buf, canon).map_err(|e| {
            if self.buf.is_empty() && !src.alive() {
                return gone(src);
            }
            Error::Parse { path: src.path_of("maps"), message: e.to_string() }
        })
    }

    /// The code mappings of the `maps` text in `self.buf`.
    fn code_mappings<S: Source + ?Sized>(&mut self, src: &S) -> Result<(), Error> {
        if self.buf.is_empty() && !src.alive() {
            return Err(gone(src));
        }
        crate::canon::code::code_mappings(&self.buf, &mut self.mappings)
            .map_err(|e| Error::Parse { path: src.path_of("maps"), message: e.to_string() })
    }

    /// Reads one file of every thread (listed in `self.tids`) into the
    /// canonical forms that need it. A thread that exits meanwhile is skipped.
    fn per_thread<S: Source + ?Sized>(
        &mut self,
        src: &S,
        file: ThreadFile,
        canons: &mut [(Subsystem, Canon)],
    ) -> Result<(), Error> {
        let name = match file {
            ThreadFile::Status => "status",
            ThreadFile::Cgroup => "cgroup",
        };
        let mut read = 0usize;
        let mut absent: Option<Error> = None;
        for i in 0..self.tids.len() {
            let Some(&tid) = self.tids.get(i) else { break };
            self.rel.clear();
            let _ = write!(self.rel, "task/{tid}/{name}");
            match src.read(&self.rel, &mut self.buf) {
                Ok(()) => read += 1,
                // The thread has exited since it was listed (or the file does
                // not exist: decided below, once every thread has been tried).
                Err(e @ Error::NotFound { .. }) => {
                    absent = Some(e);
                    continue;
                }
                Err(e) => return Err(e),
            }
            let parse = |e: String| Error::Parse { path: src.path_of(&self.rel), message: e };
            for (sub, canon) in canons.iter_mut() {
                match (file, *sub) {
                    (ThreadFile::Status, Subsystem::Seccomp) => {
                        status::canonicalize_thread(&self.buf, status::SECCOMP_FIELDS, canon)
                            .map_err(|e| parse(e.to_string()))?;
                    }
                    (ThreadFile::Status, Subsystem::Credentials) => {
                        status::canonicalize_thread(&self.buf, status::CREDENTIAL_FIELDS, canon)
                            .map_err(|e| parse(e.to_string()))?;
                    }
                    (ThreadFile::Cgroup, Subsystem::Cgroups) => {
                        cgroup::canonicalize_thread(&self.buf, canon).map_err(|e| parse(e.to_string()))?;
                    }
                    _ => {}
                }
            }
        }
        if read > 0 {
            return Ok(());
        }
        if !src.alive() {
            return Err(gone(src));
        }
        Err(absent.unwrap_or_else(|| Error::Parse { path: src.path_of("task"), message: "no threads listed".into() }))
    }
}

/// Splits a subsystem's result: `Ok(None)` observed, `Ok(Some(reason))`
/// unobservable, `Err` fails the whole observation.
fn settle(r: Result<(), Error>) -> Result<Option<String>, Error> {
    match r {
        Ok(()) => Ok(None),
        Err(e) => unobservable_reason(&e).map(Some).ok_or(e),
    }
}

fn gone<S: Source + ?Sized>(src: &S) -> Error {
    match src.target() {
        Ok(t) => match t.pid() {
            Some(pid) => Error::Gone { pid },
            None => Error::Bug("a mock source reported itself dead".into()),
        },
        Err(e) => e,
    }
}
