//! `/proc/PID/limits` → the resource-limit records of the `limits` subsystem.
//!
//! proc(5): "This file displays the soft limit, hard limit, and units of
//! measurement for each of the process's resource limits". One record per
//! limit: key its name as the kernel prints it (`Max open files`), value
//! `soft=N; hard=N` with `unlimited` kept as a word. The units column is left
//! out: it is fixed per limit, not state. Nothing here is volatile: a limit
//! changes only by `setrlimit`/`prlimit`, which is what this subsystem reports.
//!
//! Limits are per process (shared by its threads), so the file is read once.

use super::Canon;
use super::status::SEPARATOR;

pub use super::ParseError;

/// One line of the table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limit<'a> {
    /// `Max open files`, words separated by single spaces.
    pub name: &'a [u8],
    /// The soft limit: a number or `unlimited`.
    pub soft: &'a [u8],
    /// The hard limit: a number or `unlimited`.
    pub hard: &'a [u8],
}

fn is_value(word: &[u8]) -> bool {
    word == b"unlimited" || (!word.is_empty() && word.iter().all(u8::is_ascii_digit))
}

/// The words of a line with their byte ranges.
fn words(line: &[u8]) -> impl Iterator<Item = (usize, usize)> + '_ {
    let sep = |b: &u8| *b == b' ' || *b == b'\t';
    let mut pos = 0;
    std::iter::from_fn(move || {
        let rest = line.get(pos..)?;
        let start = pos + rest.iter().position(|b| !sep(b))?;
        let len = line.get(start..)?.iter().position(sep).unwrap_or(line.len() - start);
        pos = start + len;
        Some((start, start + len))
    })
}

/// Parses one line (not the header): the name is the words before the first
/// value (names never hold digits), then the soft and hard limits, then the
/// units, if any.
pub fn parse_line(line: &[u8]) -> Result<Limit<'_>, &'static str> {
    let word = |(a, b): (usize, usize)| line.get(a..b).unwrap_or(&[]);
    let mut ws = words(line);
    let (name_start, mut name_end) = ws.next().ok_or("empty line")?;
    if is_value(word((name_start, name_end))) {
        return Err("no limit name");
    }
    let soft = loop {
        let w = ws.next().ok_or("no soft limit")?;
        if is_value(word(w)) {
            break word(w);
        }
        name_end = w.1;
    };
    let hard = word(ws.next().ok_or("no hard limit")?);
    if !is_value(hard) {
        return Err("hard limit is neither a number nor unlimited");
    }
    if ws.nth(1).is_some() {
        return Err("more than one units column");
    }
    let name = line.get(name_start..name_end).ok_or("bad name")?;
    Ok(Limit { name, soft, hard })
}

/// Adds the records of a `limits` file to `out`.
pub fn canonicalize(input: &[u8], out: &mut Canon) -> Result<(), ParseError> {
    let mut seen = 0usize;
    for (i, line) in input.split(|&b| b == b'\n').enumerate() {
        if line.iter().all(|b| *b == b' ' || *b == b'\t') {
            continue;
        }
        // The header: `Limit  Soft Limit  Hard Limit  Units`.
        if line.starts_with(b"Limit ") && line.windows(10).any(|w| w == b"Soft Limit") {
            continue;
        }
        let l = parse_line(line).map_err(|message| ParseError { line: i + 1, message })?;
        let mut w = out.record();
        for (j, word) in l.name.split(|b| *b == b' ' || *b == b'\t').filter(|w| !w.is_empty()).enumerate() {
            if j > 0 {
                w.str(" ");
            }
            w.bytes(word);
        }
        w.value().str("soft=").bytes(l.soft).str(SEPARATOR).str("hard=").bytes(l.hard);
        seen += 1;
    }
    if seen == 0 {
        return Err(ParseError { line: 0, message: "no limit lines" });
    }
    Ok(())
}

/// Adds the records of limits given as numbers (the task table's), without
/// their text: each limit's name as `/proc/PID/limits` prints it (`Max open
/// files`), its soft and hard limits, `u64::MAX` for `unlimited`. The
/// records are those [`canonicalize`] makes of the text the kernel prints
/// from the same numbers.
pub fn add_values<'a>(out: &mut Canon, limits: impl IntoIterator<Item = (&'a str, [u64; 2])>) {
    for (name, [soft, hard]) in limits {
        let mut w = out.record();
        w.str(name).value().str("soft=");
        let value = |w: &mut super::RecordWriter<'_>, v: u64| {
            if v == u64::MAX {
                w.str("unlimited");
            } else {
                w.dec(v);
            }
        };
        value(&mut w, soft);
        w.str(SEPARATOR).str("hard=");
        value(&mut w, hard);
    }
}

/// Whether going from `before` to `after` loosens a limit (`unlimited` is
/// the loosest); `None` if either is not a limit value.
pub fn raised(before: &str, after: &str) -> Option<bool> {
    let n = |v: &str| if v == "unlimited" { Some(u128::MAX) } else { v.parse::<u128>().ok() };
    Some(n(after)? > n(before)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Subsystem;

    /// Captured from a process on the test VM (Linux 6.18).
    pub(crate) const LIMITS: &str = "\
Limit                     Soft Limit           Hard Limit           Units     
Max cpu time              unlimited            unlimited            seconds   
Max file size             unlimited            unlimited            bytes     
Max data size             unlimited            unlimited            bytes     
Max stack size            8388608              unlimited            bytes     
Max core file size        0                    unlimited            bytes     
Max resident set          unlimited            unlimited            bytes     
Max processes             96364                96364                processes 
Max open files            20000                20000                files     
Max locked memory         8388608              8388608              bytes     
Max address space         unlimited            unlimited            bytes     
Max file locks            unlimited            unlimited            locks     
Max pending signals       96364                96364                signals   
Max msgqueue size         819200               819200               bytes     
Max nice priority         0                    0                    
Max realtime priority     0                    0                    
Max realtime timeout      unlimited            unlimited            us        
";

    fn digest(text: &str) -> Result<crate::Digest, ParseError> {
        let mut c = Canon::new();
        canonicalize(text.as_bytes(), &mut c)?;
        Ok(c.digest(Subsystem::Limits))
    }

    fn set(name: &str, soft: &str, hard: &str) -> String {
        LIMITS
            .lines()
            .map(|l| {
                if l.starts_with(name) {
                    let units = l.get(68..).unwrap_or("");
                    format!("{name:<25} {soft:<20} {hard:<20} {units}\n")
                } else {
                    format!("{l}\n")
                }
            })
            .collect()
    }

    #[test]
    fn records_are_name_soft_hard() {
        let mut c = Canon::new();
        canonicalize(LIMITS.as_bytes(), &mut c).unwrap();
        let r = c.records();
        assert_eq!(r.len(), 16);
        let nofile = r.iter().find(|r| r.key == "Max open files").unwrap();
        assert_eq!(nofile.value, "soft=20000; hard=20000");
        let nice = r.iter().find(|r| r.key == "Max nice priority").unwrap();
        assert_eq!(nice.value, "soft=0; hard=0");
    }

    #[test]
    fn volatile_layout_is_ignored() {
        let base = digest(LIMITS).unwrap();
        let squeezed: String =
            LIMITS.lines().map(|l| format!("{}\n", l.split_whitespace().collect::<Vec<_>>().join(" "))).collect();
        assert_eq!(digest(&squeezed).unwrap(), base, "column widths");
        let reordered: String = LIMITS.lines().rev().map(|l| format!("{l}\n")).collect();
        assert_eq!(digest(&reordered).unwrap(), base, "line order");
        let no_header: String = LIMITS.lines().skip(1).map(|l| format!("{l}\n")).collect();
        assert_eq!(digest(&no_header).unwrap(), base, "the header is not state");
    }

    #[test]
    fn every_limit_change_is_caught() {
        let base = digest(LIMITS).unwrap();
        let cases = [
            ("Max open files", "1024", "20000"),
            ("Max open files", "20000", "4096"),
            ("Max core file size", "unlimited", "unlimited"),
            ("Max processes", "1", "96364"),
            ("Max stack size", "8388608", "8388608"),
            ("Max cpu time", "10", "unlimited"),
            ("Max address space", "unlimited", "1073741824"),
            ("Max realtime priority", "99", "99"),
        ];
        for (name, soft, hard) in cases {
            assert_ne!(digest(&set(name, soft, hard)).unwrap(), base, "{name} {soft} {hard}");
        }
        let gone: String =
            LIMITS.lines().filter(|l| !l.starts_with("Max msgqueue")).map(|l| format!("{l}\n")).collect();
        assert_ne!(digest(&gone).unwrap(), base, "a limit no longer listed");
    }

    #[test]
    fn bad_input_is_an_error() {
        for bad in [
            "",
            "\n",
            "Limit  Soft Limit  Hard Limit  Units\n",
            "Max open files\n",
            "Max open files 10\n",
            "Max open files 10 x files\n",
            "10 10 files\n",
            "Max open files 1 2 files extra\n",
        ] {
            assert!(digest(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn raised_compares_limits() {
        assert_eq!(raised("1024", "4096"), Some(true));
        assert_eq!(raised("unlimited", "4096"), Some(false));
        assert_eq!(raised("0", "unlimited"), Some(true));
        assert_eq!(raised("x", "1"), None);
    }
}
