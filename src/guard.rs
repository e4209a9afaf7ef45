//! The monitor guards itself, since it runs in the same radiation as what it
//! watches: state it relies on is held in redundant copies, each with its own
//! digest, voted and repaired every cycle; and SHA-256 — which every check
//! relies on — is tested against known answers.

use std::io;

use serde::Serialize;

use crate::digest::{Digest, Hasher};

/// How many copies [`Redundant`] keeps.
pub const COPIES: usize = 3;

/// A value that can be written as bytes and read back: how [`Redundant`]
/// keeps its copies after the first. A copy as bytes is one contiguous
/// block, so the vote every cycle compares three blocks (the first written
/// out just before) instead of chasing the pointers of three structures
/// across the heap: a whole-node watch spent a fifth of its samples there.
///
/// An image need not hold what the value shares by reference with every
/// copy alike (a baseline's record sets, held once and checked by their
/// own digests in `held.rs`): that part is lent ([`Image::Lent`], taken
/// when the copies are made, references only), and [`Image::from_image`]
/// takes it from there. The digest of the value read back decides whether
/// what it took was right.
pub trait Image: Sized {
    /// What images leave out, by reference.
    type Lent: Clone + std::fmt::Debug;
    /// Appends this value's image to `out`. Equal values write equal bytes.
    fn image(&self, out: &mut Vec<u8>);
    /// What images of this value leave out.
    fn lent(&self) -> Self::Lent;
    /// The value `bytes` hold, with what images leave out taken from
    /// `lent`; `None` if they do not read as one.
    fn from_image(bytes: &[u8], lent: &Self::Lent) -> Option<Self>;
}

thread_local! {
    /// The first copy's image, written for each vote on this thread.
    static IMAGE: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// A value held in [`COPIES`] copies, each with the digest of its serialized
/// form: the value itself (the copy handed out) and [`COPIES`]` - 1` images
/// of it ([`Image`]). [`Redundant::vote`] finds the copies whose content no
/// longer matches their digest, or that disagree with the others, and
/// repairs them.
#[derive(Debug, Clone)]
pub struct Redundant<T: Image> {
    /// The copy handed out by [`Redundant::get`] (copy 0).
    primary: T,
    /// What the images leave out, taken from the value when the copies were
    /// made (none for [`Redundant::single`]).
    lent: Option<T::Lent>,
    /// Copies 1 and 2, as images of one length, back to back in one block
    /// (read in one sweep by the vote); empty for [`Redundant::single`].
    images: Box<[u8]>,
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

fn image_of<T: Image>(value: &T) -> Vec<u8> {
    let mut out = Vec::new();
    value.image(&mut out);
    out
}

/// The block of the images of copies 1 and 2: `image` twice.
fn block(image: &[u8]) -> Box<[u8]> {
    image.repeat(COPIES - 1).into_boxed_slice()
}

impl<T: Serialize + Clone + PartialEq + Image> Redundant<T> {
    /// Three copies of `value`. `None` if it cannot be serialized, or if its
    /// image is empty or does not read back as it.
    pub fn new(value: T) -> Option<Redundant<T>> {
        let d = fingerprint(&value)?;
        let image = image_of(&value);
        let lent = value.lent();
        if image.is_empty() || T::from_image(&image, &lent).as_ref() != Some(&value) {
            return None;
        }
        Some(Redundant { images: block(&image), lent: Some(lent), primary: value, digests: vec![d; COPIES] })
    }

    /// One copy and no digest: for a value used once (a one-shot check
    /// against a baseline file that has just passed its own integrity check),
    /// where copies would cost more than they protect. Its vote is a no-op.
    pub fn single(value: T) -> Redundant<T> {
        Redundant { primary: value, lent: None, images: Box::default(), digests: Vec::new() }
    }

    /// The first copy. Call [`Redundant::vote`] first to be sure it is good.
    pub fn get(&self) -> &T {
        &self.primary
    }

    /// Checks every copy against its own digest, takes the majority of the
    /// good ones, and overwrites the others with it.
    ///
    /// Fast path: when the first copy's image, written now, is byte for byte
    /// each other copy and the three stored digests are equal, nothing is
    /// rehashed — independent faults cannot corrupt all three the same way.
    /// Any difference takes the full path: every copy is hashed and checked
    /// against its own digest.
    pub fn vote(&mut self) -> Vote {
        if self.images.is_empty() {
            return Vote::default();
        }
        let agree = IMAGE.with(|buf| {
            let Ok(mut buf) = buf.try_borrow_mut() else { return false };
            buf.clear();
            self.primary.image(&mut buf);
            self.images.len() == buf.len() * (COPIES - 1)
                && self.images.chunks_exact(buf.len().max(1)).all(|image| image == &buf[..])
        });
        match self.digests.as_slice() {
            [d0, d1, d2] if agree && d0 == d1 && d1 == d2 => Vote::default(),
            _ => self.full_vote(),
        }
    }

    /// The vote with every copy hashed.
    #[inline(never)]
    pub fn full_vote(&mut self) -> Vote {
        if self.images.is_empty() {
            return Vote::default();
        }
        // Each copy as a value: the first as it is, the others read back
        // from their images (`None`: an image that no longer reads as one).
        let read: Vec<Option<T>> = (1..COPIES).map(|i| T::from_image(self.image(i)?, self.lent.as_ref()?)).collect();
        let computed: Vec<Option<Digest>> = std::iter::once(fingerprint(&self.primary))
            .chain(read.iter().map(|v| v.as_ref().and_then(fingerprint)))
            .collect();
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
        let good_copy = match source {
            0 => Some(self.primary.clone()),
            i => read.into_iter().nth(i - 1).flatten(),
        };
        let Some(good_copy) = good_copy else {
            vote.lost = true;
            return vote;
        };
        let good_image = image_of(&good_copy);
        // Which copies are wrong, all decided before any is written (the
        // images are written together).
        let wrong: Vec<bool> = (0..COPIES)
            .map(|i| {
                !(computed.get(i).copied().flatten() == Some(good)
                    && self.digests.get(i) == Some(&good)
                    && (i == 0 || self.image(i) == Some(&good_image[..])))
            })
            .collect();
        for (i, _) in wrong.iter().enumerate().filter(|(_, w)| **w) {
            // The images that are right are the good image already: both
            // are written again as it.
            match i {
                0 => self.primary = good_copy.clone(),
                _ => self.images = block(&good_image),
            }
            if let Some(d) = self.digests.get_mut(i) {
                *d = good;
            }
            if let Some(r) = vote.repaired.get_mut(i) {
                *r = true;
            }
        }
        vote
    }

    /// Replaces every copy (a new baseline).
    pub fn set(&mut self, value: T) -> Option<()> {
        *self = if self.images.is_empty() { Redundant::single(value) } else { Redundant::new(value)? };
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

    /// The first copy, bypassing its digest: to put in it what the images
    /// do not hold (a repaired record set, held once; then
    /// [`Redundant::relend`]), and for fault injection (`fdir selftest`)
    /// and tests.
    pub fn primary_mut(&mut self) -> &mut T {
        &mut self.primary
    }

    /// After [`Redundant::primary_mut`] put in the first copy a part the
    /// images leave out, equal to the one it replaced (a repaired record set
    /// of the same digest, the held one for a set of its own): takes that
    /// part from it and writes the images again, so that the copies refer
    /// to it. The stored digests stay: they are of the value, which has not
    /// changed. A fault in the first copy since its last vote would be
    /// written into the images with it; the digests then refuse all three,
    /// and the value is restored from elsewhere, never trusted.
    pub fn relend(&mut self) {
        if self.lent.is_some() {
            self.lent = Some(self.primary.lent());
            self.images = block(&image_of(&self.primary));
        }
    }

    /// The image of copy `index` (1 or 2), bypassing its digest: for fault
    /// injection and tests only.
    pub fn image_mut(&mut self, index: usize) -> Option<&mut [u8]> {
        let span = self.span(index)?;
        self.images.get_mut(span)
    }

    /// The image of copy `index` (1 or 2).
    fn image(&self, index: usize) -> Option<&[u8]> {
        self.images.get(self.span(index)?)
    }

    /// Where the image of copy `index` (1 or 2) lies in the block; `None`
    /// for no such copy, or none at all ([`Redundant::single`]).
    fn span(&self, index: usize) -> Option<std::ops::Range<usize>> {
        let len = self.images.len() / (COPIES - 1);
        let at = index.checked_sub(1)?.checked_mul(len)?;
        (len > 0 && index < COPIES).then_some(at..at.checked_add(len)?)
    }

    /// Flips one bit of copy `index`, chosen by `seed`, bypassing its
    /// digest (fault injection: `fdir selftest`, the daemon's faults, tests):
    /// `flip` flips one in the first copy and says where; in the others, a
    /// bit of the image. `None` if there is no such copy.
    pub fn flip_bit(&mut self, index: usize, seed: u64, flip: impl FnOnce(&mut T, u64) -> String) -> Option<String> {
        if index == 0 {
            return Some(flip(&mut self.primary, seed));
        }
        let image = self.image_mut(index)?;
        let len = u64::try_from(image.len()).ok()?;
        let at = usize::try_from(seed.rotate_left(29) % len.max(1)).ok()?;
        *image.get_mut(at)? ^= 1 << (seed % 8);
        Some(format!("byte {at} of its image"))
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

    /// The values as lengths and bytes, then the digest; nothing shared.
    impl Image for State {
        type Lent = ();
        fn lent(&self) {}
        fn image(&self, out: &mut Vec<u8>) {
            out.push(u8::try_from(self.values.len()).unwrap());
            for v in &self.values {
                out.push(u8::try_from(v.len()).unwrap());
                out.extend_from_slice(v.as_bytes());
            }
            out.extend_from_slice(&self.digest);
        }
        fn from_image(bytes: &[u8], _lent: &()) -> Option<State> {
            let (&n, mut rest) = bytes.split_first()?;
            let mut values = Vec::new();
            for _ in 0..n {
                let (&len, tail) = rest.split_first()?;
                let (v, tail) = tail.split_at_checked(usize::from(len))?;
                values.push(String::from_utf8(v.to_vec()).ok()?);
                rest = tail;
            }
            Some(State { values, digest: rest.try_into().ok()? })
        }
    }

    /// Copy `copy` with one fault: in the first copy `fault` applied, in
    /// the others a bit of the image (chosen by `seed`) flipped.
    fn faulty(copy: usize, seed: u64, fault: fn(&mut State)) -> Redundant<State> {
        let mut r = Redundant::new(state()).unwrap();
        r.flip_bit(copy, seed, |s, _| {
            fault(s);
            String::new()
        })
        .unwrap();
        r
    }

    #[test]
    fn the_fast_path_still_sees_every_single_fault() {
        // Content, then stored digest, of each copy: each breaks the equality.
        for copy in 0..COPIES {
            for seed in 0..64 {
                let mut r = faulty(copy, seed, |s| s.digest[3] ^= 0x80);
                assert!(r.vote().repaired[copy], "copy {copy}, seed {seed}");
                assert_eq!(r.get(), &state());
            }
            let mut r = Redundant::new(state()).unwrap();
            r.digest_mut(copy).unwrap().0[31] ^= 0x01;
            assert!(r.vote().repaired[copy]);
        }
    }

    #[test]
    fn a_corrupted_copy_is_repaired_from_the_others() {
        for copy in 0..COPIES {
            for seed in [0, 7, 1 << 20, u64::MAX] {
                let mut r = faulty(copy, seed, |s| s.values[1].push('x'));
                let v = r.vote();
                assert!(!v.lost);
                assert_eq!(v.repairs(), 1);
                assert!(v.repaired[copy]);
                assert_eq!(r.get(), &state());
                assert_eq!(r.vote(), Vote::default(), "repaired for good");
            }
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
        for (a, b) in [(0, 1), (0, 2), (1, 2)] {
            let mut r = faulty(a, 3, |s| s.digest[0] ^= 1);
            r.flip_bit(b, 11, |s, _| {
                s.values.push("z".into());
                String::new()
            });
            let v = r.vote();
            assert!(!v.lost, "copies {a} and {b}");
            assert_eq!(v.repairs(), 2);
            assert_eq!(r.get(), &state());
            assert_eq!(r.vote(), Vote::default());
        }
    }

    #[test]
    fn both_images_corrupted_at_once_are_two_repairs() {
        for seeds in [(0, 1), (5, 900), (1 << 40, 3)] {
            let mut r = Redundant::new(state()).unwrap();
            for (copy, seed) in [(1, seeds.0), (2, seeds.1)] {
                r.flip_bit(copy, seed, |_, _| String::new());
            }
            let v = r.vote();
            assert_eq!(v.repaired, [false, true, true], "{seeds:?}");
            assert_eq!(r.vote(), Vote::default());
        }
    }

    #[test]
    fn three_corrupted_copies_are_lost_not_trusted() {
        let mut r = Redundant::new(state()).unwrap();
        for i in 0..COPIES {
            r.flip_bit(i, u64::try_from(i).unwrap() * 5, |s, _| {
                s.digest[0] ^= 1;
                String::new()
            });
        }
        assert!(r.vote().lost);
    }

    #[test]
    fn a_value_whose_image_does_not_read_back_is_not_held() {
        /// An image that keeps only the low byte.
        #[derive(Debug, Clone, PartialEq, Serialize)]
        struct Lossy(u32);
        impl Image for Lossy {
            type Lent = ();
            fn lent(&self) {}
            fn image(&self, out: &mut Vec<u8>) {
                out.push(self.0.to_le_bytes()[0]);
            }
            fn from_image(bytes: &[u8], _lent: &()) -> Option<Lossy> {
                Some(Lossy(u32::from(*bytes.first()?)))
            }
        }
        assert!(Redundant::new(Lossy(255)).is_some());
        assert!(Redundant::new(Lossy(300)).is_none(), "its copies would not be it");
        let mut r = Redundant::new(state()).unwrap();
        assert!(r.image_mut(0).is_none() && r.image_mut(3).is_none());
        assert!(r.image_mut(1).is_some() && r.image_mut(2).is_some());
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
