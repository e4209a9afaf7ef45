//! The monitor guards itself, since it runs in the same radiation as what it
//! watches: state it relies on is held in redundant copies, each with its own
//! digest, voted and repaired every cycle; and SHA-256 — which every check
//! relies on — is tested against known answers.

use std::io;

use serde::Serialize;

use crate::digest::{Digest, Hasher};

/// How many copies [`Redundant`] keeps.
pub const COPIES: usize = 3;

/// A value held in [`COPIES`] copies, each with the digest of its serialized
/// form. [`Redundant::vote`] finds the copies whose content no longer matches
/// their digest, or that disagree with the others, and repairs them.
#[derive(Debug, Clone)]
pub struct Redundant<T> {
    /// The copy handed out by [`Redundant::get`] (copy 0).
    primary: T,
    /// Copies 1 and 2 (none for [`Redundant::single`]).
    extra: Vec<T>,
    /// One digest per copy (none for [`Redundant::single`]).
    digests: Vec<Digest>,
}

/// What a vote found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Vote {
    /// Copies that were repaired (their index).
    pub repaired: [bool; COPIES],
    /// No copy could be trusted: every one failed its own digest, or the
    /// trusted ones disagree with no majority. The value must be restored
    /// from elsewhere (the baseline file).
    pub lost: bool,
}

impl Vote {
    /// How many copies were repaired.
    pub fn repairs(&self) -> usize {
        self.repaired.iter().filter(|r| **r).count()
    }
}

struct HashWriter(Hasher);

impl io::Write for HashWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.update(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// The SHA-256 of a value's JSON form (deterministic: fdir's types keep
/// their maps sorted). `None` if it cannot be serialized.
pub fn fingerprint<T: Serialize>(value: &T) -> Option<Digest> {
    let mut w = HashWriter(Hasher::new());
    serde_json::to_writer(&mut w, value).ok()?;
    Some(w.0.finish())
}

impl<T: Serialize + Clone + PartialEq> Redundant<T> {
    /// Three copies of `value`. `None` if it cannot be serialized.
    pub fn new(value: T) -> Option<Redundant<T>> {
        let d = fingerprint(&value)?;
        Some(Redundant { extra: vec![value.clone(), value.clone()], primary: value, digests: vec![d; COPIES] })
    }

    /// One copy and no digest: for a value used once (a one-shot check
    /// against a baseline file that has just passed its own integrity check),
    /// where copies would cost more than they protect. Its vote is a no-op.
    pub fn single(value: T) -> Redundant<T> {
        Redundant { primary: value, extra: Vec::new(), digests: Vec::new() }
    }

    /// The first copy. Call [`Redundant::vote`] first to be sure it is good.
    pub fn get(&self) -> &T {
        &self.primary
    }

    /// Checks every copy against its own digest, takes the majority of the
    /// good ones, and overwrites the others with it.
    ///
    /// Fast path: when the three copies are equal and so are their three
    /// stored digests, nothing is rehashed — independent faults cannot corrupt
    /// all three the same way. Any difference takes the full path: every copy
    /// is hashed and checked against its own digest.
    pub fn vote(&mut self) -> Vote {
        match (self.extra.as_slice(), self.digests.as_slice()) {
            ([], _) => Vote::default(),
            ([c1, c2], [d0, d1, d2]) if self.primary == *c1 && c1 == c2 && d0 == d1 && d1 == d2 => Vote::default(),
            _ => self.full_vote(),
        }
    }

    /// The vote with every copy hashed.
    #[inline(never)]
    pub fn full_vote(&mut self) -> Vote {
        if self.extra.is_empty() {
            return Vote::default();
        }
        let computed: Vec<Option<Digest>> =
            std::iter::once(&self.primary).chain(self.extra.iter()).map(fingerprint).collect();
        // A copy is trusted if its content still matches its own digest.
        let trusted: Vec<usize> = (0..COPIES)
            .filter(|&i| {
                computed.get(i).copied().flatten().is_some()
                    && computed.get(i).copied().flatten() == self.digests.get(i).copied()
            })
            .collect();
        // Among trusted copies, the digest most of them share.
        let mut best: Option<(Digest, usize)> = None;
        for &i in &trusted {
            let Some(Some(d)) = computed.get(i) else { continue };
            let n = trusted.iter().filter(|&&j| computed.get(j).copied().flatten() == Some(*d)).count();
            if best.is_none_or(|(_, m)| n > m) {
                best = Some((*d, n));
            }
        }
        let mut vote = Vote::default();
        let Some((good, n)) = best else {
            vote.lost = true;
            return vote;
        };
        // Two trusted copies that disagree, with no third to decide: lost.
        if n * 2 <= trusted.len() && trusted.len() > 1 {
            vote.lost = true;
            return vote;
        }
        let Some(source) = trusted.iter().copied().find(|&i| computed.get(i).copied().flatten() == Some(good)) else {
            vote.lost = true;
            return vote;
        };
        let Some(good_copy) = self.copy(source).cloned() else {
            vote.lost = true;
            return vote;
        };
        for i in 0..COPIES {
            let ok = computed.get(i).copied().flatten() == Some(good) && self.digests.get(i) == Some(&good);
            if !ok {
                if let Some(c) = self.copy_mut(i) {
                    *c = good_copy.clone();
                }
                if let Some(d) = self.digests.get_mut(i) {
                    *d = good;
                }
                if let Some(r) = vote.repaired.get_mut(i) {
                    *r = true;
                }
            }
        }
        vote
    }

    /// Replaces every copy (a new baseline).
    pub fn set(&mut self, value: T) -> Option<()> {
        *self = if self.extra.is_empty() { Redundant::single(value) } else { Redundant::new(value)? };
        Some(())
    }

    /// Whether `value` equals the voted value (by fingerprint): to vote the
    /// baseline file against memory.
    pub fn agrees_with(&self, value: &T) -> bool {
        match self.digests.first() {
            Some(d) => fingerprint(value).is_some_and(|v| v == *d),
            None => self.primary == *value,
        }
    }

    /// The stored digest of the first copy: after a [`Redundant::vote`] that
    /// did not lose the value, the digest of the voted value. `None` for
    /// [`Redundant::single`].
    pub fn digest(&self) -> Option<&Digest> {
        self.digests.first()
    }

    fn copy(&self, index: usize) -> Option<&T> {
        match index {
            0 => Some(&self.primary),
            i => self.extra.get(i - 1),
        }
    }

    /// Mutable access to one copy, bypassing its digest: for fault injection
    /// (`fdir selftest`) and tests only.
    pub fn copy_mut(&mut self, index: usize) -> Option<&mut T> {
        match index {
            0 => Some(&mut self.primary),
            i => self.extra.get_mut(i - 1),
        }
    }

    /// Mutable access to one copy's stored digest, for fault injection.
    pub fn digest_mut(&mut self, index: usize) -> Option<&mut Digest> {
        self.digests.get_mut(index)
    }
}

/// The messages of the known answers, one after the other: the empty
/// message, "abc" (one block), and the FIPS 180-2 two- and three-block
/// examples. Plain bytes, and the table below plain numbers: no pointer to
/// relocate, so both lie in read-only data next to the rest of a cycle's
/// (`link/cycle.ld`, in the flight build), not on a page of relocated data of their own.
static KAT_MESSAGES: [u8; 3 + 56 + 112] = *b"abc\
abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq\
abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmnhijklmnoijklmnopjklmnopqklmnopqrlmnopqrsmnopqrstnopqrstu";

/// A known answer: the SHA-256 of `KAT_MESSAGES[start..end]`.
struct KnownAnswer {
    start: usize,
    end: usize,
    digest: [u8; 32],
}

/// SHA-256 known answers (FIPS 180-2 examples and the empty message): one,
/// two and three blocks.
static KNOWN_ANSWERS: [KnownAnswer; 4] = [
    KnownAnswer {
        start: 0,
        end: 0,
        digest: hex32(b"e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"),
    },
    KnownAnswer {
        start: 0,
        end: 3,
        digest: hex32(b"ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"),
    },
    KnownAnswer {
        start: 3,
        end: 59,
        digest: hex32(b"248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"),
    },
    KnownAnswer {
        start: 59,
        end: 171,
        digest: hex32(b"cf5b16a778af8380036ce59e7b0492370b249b11e8f07a51afac45037afee9d1"),
    },
];

/// 64 hex digits as 32 bytes, at compile time. A character that is not a
/// lowercase hex digit counts as 0, and the known answer it is part of then
/// fails (`the_known_answers_are_the_fips_vectors` checks the table).
const fn hex32(hex: &[u8; 64]) -> [u8; 32] {
    const fn nibble(c: u8) -> u8 {
        match c {
            b'0'..=b'9' => c.wrapping_sub(b'0'),
            b'a'..=b'f' => c.wrapping_sub(b'a').wrapping_add(10),
            _ => 0,
        }
    }
    let mut out = [0u8; 32];
    let mut digits: &[u8] = hex;
    let mut bytes: &mut [u8] = &mut out;
    while let ([hi, lo, more_digits @ ..], [byte, more_bytes @ ..]) = (digits, bytes) {
        *byte = (nibble(*hi) << 4) | nibble(*lo);
        digits = more_digits;
        bytes = more_bytes;
    }
    out
}

/// The SHA-256 known-answer test run every cycle: four vectors from one to
/// three blocks, compared as bytes (no formatting on the passing path), a
/// few hundred nanoseconds. `Err` names the failing vector.
pub fn sha256_self_test() -> Result<(), String> {
    for (i, k) in KNOWN_ANSWERS.iter().enumerate() {
        let got = Digest::of(KAT_MESSAGES.get(k.start..k.end).unwrap_or_default());
        if got.0 != k.digest {
            return Err(format!("SHA-256 known-answer test {i} failed: got {got}, expected {}", Digest(k.digest)));
        }
    }
    Ok(())
}

/// The full known-answer test, run at start: the per-cycle vectors and one
/// million 'a' hashed incrementally (FIPS 180-2, example 3).
pub fn sha256_self_test_full() -> Result<(), String> {
    sha256_self_test()?;
    // One million 'a' (FIPS 180-2, example 3), hashed incrementally.
    let mut h = Hasher::new();
    let block = [b'a'; 1000];
    for _ in 0..1000 {
        h.update(&block);
    }
    let got = h.finish().to_string();
    let want = "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0";
    if got != want {
        return Err(format!("SHA-256 known-answer test (one million 'a') failed: got {got}, expected {want}"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Clone, PartialEq, Serialize)]
    struct State {
        values: Vec<String>,
        digest: [u8; 4],
    }

    fn state() -> State {
        State { values: vec!["a".into(), "bc".into()], digest: [1, 2, 3, 4] }
    }

    #[test]
    fn the_known_answers_are_the_fips_vectors() {
        // The messages and digests as FIPS 180-2 and every reference list them.
        let vectors: [(&[u8], &str); 4] = [
            (b"", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"),
            (b"abc", "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"),
            (
                b"abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq",
                "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1",
            ),
            (
                b"abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmnhijklmnoijklmnopjklmnopqklmnopqrlmnopqrsmnopqrstnopqrstu",
                "cf5b16a778af8380036ce59e7b0492370b249b11e8f07a51afac45037afee9d1",
            ),
        ];
        assert_eq!(KNOWN_ANSWERS.len(), vectors.len());
        for (k, (msg, digest)) in KNOWN_ANSWERS.iter().zip(vectors) {
            assert_eq!(KAT_MESSAGES.get(k.start..k.end), Some(msg));
            assert_eq!(Digest(k.digest).to_string(), digest);
        }
        // A digit that is not one counts as 0, so its answer cannot pass.
        let mut bad = *b"e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
        bad[0] = b'g';
        assert_ne!(hex32(&bad), KNOWN_ANSWERS[0].digest);
    }

    #[test]
    fn known_answers_pass() {
        sha256_self_test().unwrap();
        sha256_self_test_full().unwrap();
    }

    #[test]
    fn the_fast_path_still_sees_every_single_fault() {
        // Content, then stored digest, of each copy: each breaks the equality.
        for copy in 0..COPIES {
            let mut r = Redundant::new(state()).unwrap();
            r.copy_mut(copy).unwrap().digest[3] ^= 0x80;
            assert!(r.vote().repaired[copy]);
            let mut r = Redundant::new(state()).unwrap();
            r.digest_mut(copy).unwrap().0[31] ^= 0x01;
            assert!(r.vote().repaired[copy]);
        }
    }

    #[test]
    fn a_corrupted_copy_is_repaired_from_the_others() {
        for copy in 0..COPIES {
            let mut r = Redundant::new(state()).unwrap();
            r.copy_mut(copy).unwrap().values[1].push('x');
            let v = r.vote();
            assert!(!v.lost);
            assert_eq!(v.repairs(), 1);
            assert!(v.repaired[copy]);
            assert_eq!(r.get(), &state());
            assert_eq!(r.vote(), Vote::default(), "repaired for good");
        }
    }

    #[test]
    fn a_corrupted_digest_is_repaired_too() {
        let mut r = Redundant::new(state()).unwrap();
        r.digest_mut(2).unwrap().0[5] ^= 0x10;
        let v = r.vote();
        assert!(v.repaired[2] && !v.lost);
        assert_eq!(r.vote().repairs(), 0);
    }

    #[test]
    fn two_corrupted_copies_are_repaired_from_the_one_that_matches_its_digest() {
        let mut r = Redundant::new(state()).unwrap();
        r.copy_mut(0).unwrap().digest[0] ^= 1;
        r.copy_mut(1).unwrap().values.push("z".into());
        let v = r.vote();
        assert!(!v.lost);
        assert_eq!(v.repairs(), 2);
        assert_eq!(r.get(), &state());
    }

    #[test]
    fn three_corrupted_copies_are_lost_not_trusted() {
        let mut r = Redundant::new(state()).unwrap();
        for i in 0..COPIES {
            r.copy_mut(i).unwrap().digest[i] ^= 1;
        }
        assert!(r.vote().lost);
    }

    #[test]
    fn agreement_with_an_outside_copy() {
        let r = Redundant::new(state()).unwrap();
        assert!(r.agrees_with(&state()));
        let mut other = state();
        other.values.clear();
        assert!(!r.agrees_with(&other));
    }
}
