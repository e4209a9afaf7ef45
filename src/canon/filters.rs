//! Seccomp filter programs → the records of the `seccomp-filters` subsystem.
//!
//! Filters are per thread: each thread has a chain of programs, oldest first
//! (`PTRACE_SECCOMP_GET_FILTER` index 0 is the first filter installed, possibly
//! by an ancestor before a fork). Threads come and go and share chains (a
//! filter installed with `SECCOMP_FILTER_FLAG_TSYNC` is the same program in
//! every thread), so the form is built from the *set of distinct chains*:
//!
//! - `filter #I` → `N instructions, returns ACTIONS, sha256 HEX`: the program
//!   at index I of some chain, identified by the SHA-256 of its raw
//!   `sock_filter` bytes, with a short, disassembly-free description (the
//!   instruction count and the actions its constant `ret`s return). When
//!   threads disagree at index I, the key has several values.
//! - `chain` → `K filters, sha256 HEX`: one per distinct chain (K may be 0),
//!   hashed over its programs' digests in order, so that which programs go
//!   together is part of the form.
//!
//! When the programs cannot be read (no `CAP_SYS_ADMIN`, a kernel without
//! `CONFIG_CHECKPOINT_RESTORE`, a monitor under seccomp itself), the form
//! degrades to the counts, and says so:
//!
//! - `chain` → `K filters`, one per distinct count;
//! - `programs` → `unreadable: REASON`.
//!
//! A degraded form is the [`project`]ion of a full one plus the `programs`
//! record, so the two can always be compared on what both hold (the counts),
//! and a monitor never flip-flops between the two forms.
//!
//! The programs read are the kernel's saved copy of each filter as it was
//! installed, not the translated program that runs: they prove which filters
//! are installed, not that the kernel's running copy is intact.

use std::fmt::Write as _;

use super::{Canon, Record};
use crate::digest::{Digest, Hasher, to_hex};

/// The key of a chain record.
pub const CHAIN: &str = "chain";
/// The key of the record that marks a degraded form.
pub const PROGRAMS: &str = "programs";
/// The prefix of a filter record's key (`filter #0`).
pub const FILTER: &str = "filter #";
const SHA: &str = ", sha256 ";

/// Bytes of one classic BPF instruction (`struct sock_filter`).
pub const INSN_BYTES: usize = 8;

/// One seccomp program, as the canonical form describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Program {
    /// SHA-256 of the raw `sock_filter` bytes.
    pub digest: Digest,
    /// Number of instructions.
    pub instructions: usize,
    /// The actions its constant `ret` instructions return, in a fixed order
    /// (`kill-process` first, `allow` last; `computed` for a `ret A`).
    pub returns: Vec<&'static str>,
}

/// The seccomp actions (`SECCOMP_RET_*`, the top 16 bits of a return value),
/// most severe first.
const ACTIONS: &[(u32, &str)] = &[
    (0x8000_0000, "kill-process"),
    (0x0000_0000, "kill-thread"),
    (0x0003_0000, "trap"),
    (0x0005_0000, "errno"),
    (0x7fc0_0000, "user-notif"),
    (0x7ff0_0000, "trace"),
    (0x7ffc_0000, "log"),
    (0x7fff_0000, "allow"),
];

const BPF_CLASS_RET: u16 = 0x06;
const BPF_RVAL_A: u16 = 0x10;

impl Program {
    /// Describes the raw bytes of a program (a trailing partial instruction is
    /// hashed but not decoded).
    pub fn of(bytes: &[u8]) -> Program {
        let mut returns: Vec<&'static str> = Vec::new();
        for insn in bytes.chunks_exact(INSN_BYTES) {
            let code = insn.get(..2).and_then(|c| c.try_into().ok()).map_or(0, u16::from_ne_bytes);
            if code & 0x07 != BPF_CLASS_RET {
                continue;
            }
            let action = if code & 0x18 == BPF_RVAL_A {
                "computed"
            } else {
                let k = insn.get(4..8).and_then(|k| k.try_into().ok()).map_or(0, u32::from_ne_bytes);
                let full = k & 0xffff_0000;
                ACTIONS.iter().find(|(v, _)| *v == full).map_or("unknown", |(_, name)| name)
            };
            if !returns.contains(&action) {
                returns.push(action);
            }
        }
        let rank = |a: &&str| ACTIONS.iter().position(|(_, n)| n == a).unwrap_or(ACTIONS.len());
        returns.sort_by_key(rank);
        Program { digest: Digest::of(bytes), instructions: bytes.len() / INSN_BYTES, returns }
    }

    /// The record value: `N instructions, returns ACTIONS, sha256 HEX`.
    pub fn describe(&self) -> String {
        let mut s = format!("{} instruction{}", self.instructions, if self.instructions == 1 { "" } else { "s" });
        if self.returns.is_empty() {
            s.push_str(", returns nothing");
        } else {
            let _ = write!(s, ", returns {}", self.returns.join(" "));
        }
        s.push_str(SHA);
        s.push_str(&self.digest.to_string());
        s
    }
}

fn count(k: usize) -> String {
    format!("{k} filter{}", if k == 1 { "" } else { "s" })
}

/// The digest of a chain: of its programs' digests, in order.
pub fn chain_digest(chain: &[Program]) -> Digest {
    let mut h = Hasher::new();
    h.update(b"fdir seccomp chain v1\n");
    for p in chain {
        h.update(p.digest.as_bytes());
    }
    h.finish()
}

/// Adds the full form of the distinct `chains` of a process to `out`.
pub fn canonicalize_programs(chains: &[Vec<Program>], out: &mut Canon) {
    for chain in chains {
        let value = if chain.is_empty() {
            count(0)
        } else {
            format!("{}{SHA}{}", count(chain.len()), to_hex(chain_digest(chain).as_bytes()))
        };
        out.push(CHAIN, &value);
        for (i, p) in chain.iter().enumerate() {
            out.push(&format!("{FILTER}{i}"), &p.describe());
        }
    }
    out.finish();
}

/// Adds the degraded form (the distinct filter `counts` of the threads, and
/// why the programs could not be read) to `out`.
pub fn canonicalize_counts(counts: &[usize], reason: &str, out: &mut Canon) {
    for &k in counts {
        out.push(CHAIN, &count(k));
    }
    out.push(PROGRAMS, &format!("unreadable: {reason}"));
    out.finish();
}

/// Whether a set of records is the degraded (count-only) form.
pub fn is_degraded(records: &[Record]) -> bool {
    records.iter().any(|r| r.key == PROGRAMS)
}

/// Why the programs of a degraded form could not be read.
pub fn degraded_reason(records: &[Record]) -> Option<&str> {
    records.iter().find(|r| r.key == PROGRAMS).map(|r| r.value.strip_prefix("unreadable: ").unwrap_or(&r.value))
}

/// The counts alone: the chain records without their digests, sorted and
/// deduplicated, without the filter and `programs` records. What a full and a
/// degraded form have in common.
pub fn project(records: &[Record]) -> Vec<Record> {
    let mut out: Vec<Record> = records
        .iter()
        .filter(|r| r.key == CHAIN)
        .map(|r| Record {
            key: r.key.clone(),
            value: r.value.split_once(SHA).map_or(r.value.as_str(), |(k, _)| k).to_owned(),
        })
        .collect();
    out.sort();
    out.dedup();
    out
}

/// The index of a filter record's key (`filter #3` → 3).
pub fn filter_index(key: &str) -> Option<usize> {
    key.strip_prefix(FILTER)?.parse().ok()
}

/// A record value shortened for people: the digest cut to 12 hex digits.
pub fn short(value: &str) -> String {
    match value.split_once(SHA) {
        Some((head, hex)) => format!("{head}{SHA}{}", hex.get(..12).unwrap_or(hex)),
        None => value.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Subsystem;

    /// `ret K` and `ret A` instructions.
    fn ret(k: u32) -> [u8; 8] {
        let mut b = [0u8; 8];
        b[..2].copy_from_slice(&0x06u16.to_ne_bytes());
        b[4..].copy_from_slice(&k.to_ne_bytes());
        b
    }

    fn prog(insns: &[[u8; 8]]) -> Vec<u8> {
        insns.concat()
    }

    const LD_NR: [u8; 8] = [0x20, 0, 0, 0, 0, 0, 0, 0];

    #[test]
    fn programs_are_described_without_disassembly() {
        let allow = Program::of(&prog(&[ret(0x7fff_0000)]));
        assert_eq!(allow.instructions, 1);
        assert_eq!(allow.returns, ["allow"]);
        assert!(allow.describe().starts_with("1 instruction, returns allow, sha256 "), "{}", allow.describe());
        let mixed = Program::of(&prog(&[LD_NR, ret(0x7fff_0000), ret(0x0005_0001), ret(0x8000_0000)]));
        assert_eq!(mixed.returns, ["kill-process", "errno", "allow"]);
        assert!(mixed.describe().starts_with("4 instructions, returns kill-process errno allow, sha256 "));
        let computed = Program::of(&prog(&[[0x16, 0, 0, 0, 0, 0, 0, 0], ret(0x1234_0000)]));
        assert_eq!(computed.returns, ["computed", "unknown"]);
        assert_eq!(Program::of(&prog(&[LD_NR])).returns, Vec::<&str>::new());
        // One bit anywhere changes the digest.
        let mut bytes = prog(&[ret(0x7fff_0000)]);
        bytes[5] ^= 0x01;
        assert_ne!(Program::of(&bytes).digest, allow.digest);
    }

    fn records(f: impl FnOnce(&mut Canon)) -> Vec<Record> {
        let mut c = Canon::new();
        f(&mut c);
        c.records()
    }

    #[test]
    fn chains_are_a_set_and_order_matters_within_one() {
        let a = Program::of(&prog(&[ret(0x7fff_0000)]));
        let b = Program::of(&prog(&[LD_NR, ret(0x0005_0001)]));
        let one = records(|c| canonicalize_programs(&[vec![a.clone(), b.clone()]], c));
        let twice = records(|c| canonicalize_programs(&[vec![a.clone(), b.clone()], vec![a.clone(), b.clone()]], c));
        assert_eq!(one, twice, "threads sharing a chain are one class");
        let swapped = records(|c| canonicalize_programs(&[vec![b.clone(), a.clone()]], c));
        assert_ne!(one, swapped);
        let keys: Vec<&str> = one.iter().map(|r| r.key.as_str()).collect();
        assert_eq!(keys, ["chain", "filter #0", "filter #1"]);
        assert!(one[0].value.starts_with("2 filters, sha256 "));
        let none = records(|c| canonicalize_programs(&[vec![]], c));
        assert_eq!(none, [Record { key: "chain".into(), value: "0 filters".into() }]);
    }

    #[test]
    fn a_degraded_form_is_the_projection_of_a_full_one() {
        let a = Program::of(&prog(&[ret(0x7fff_0000)]));
        let full = records(|c| canonicalize_programs(&[vec![a.clone()], vec![a.clone(), a.clone()]], c));
        let degraded = records(|c| canonicalize_counts(&[1, 2], "needs CAP_SYS_ADMIN", c));
        assert!(!is_degraded(&full) && is_degraded(&degraded));
        assert_eq!(degraded_reason(&degraded), Some("needs CAP_SYS_ADMIN"));
        assert_eq!(project(&full), project(&degraded));
        assert_eq!(project(&degraded).len(), 2);
        let mut c = Canon::new();
        canonicalize_counts(&[1, 2], "needs CAP_SYS_ADMIN", &mut c);
        assert_ne!(c.digest(Subsystem::SeccompFilters), Canon::new().digest(Subsystem::SeccompFilters));
    }

    #[test]
    fn keys_and_short_values() {
        assert_eq!(filter_index("filter #12"), Some(12));
        assert_eq!(filter_index("chain"), None);
        let v = format!("1 instruction, returns allow, sha256 {}", "ab".repeat(32));
        assert_eq!(short(&v), "1 instruction, returns allow, sha256 abababababab");
        assert_eq!(short("2 filters"), "2 filters");
    }
}
