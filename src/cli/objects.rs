//! `fdir objects`: the kernel objects a baseline's processes refer to, each
//! once, with its processes (`fdir::graph`).

use std::collections::BTreeMap;
use std::io::Write;

use anyhow::Result;
use fdir::graph::{self, Object};

use super::args::{FileArgs, Format};
use super::run::{NO_DRIFT, load_baseline, load_key};

/// How many command names a text line lists before "…".
const NAMES_SHOWN: usize = 3;

pub fn run(file: &FileArgs, shared: bool, format: Format) -> Result<u8> {
    let key = load_key(file)?;
    let loaded = load_baseline(file, key.as_ref())?;
    let objects: Vec<Object> =
        graph::objects(&loaded.targets).into_iter().filter(|o| !shared || o.targets.len() >= 2).collect();
    match write(&objects, loaded.targets.len(), file, shared, format) {
        // A reader that stopped early (`| head`) wanted no more.
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(NO_DRIFT),
        Err(e) => Err(e.into()),
        Ok(()) => Ok(NO_DRIFT),
    }
}

fn write(objects: &[Object], targets: usize, file: &FileArgs, shared: bool, format: Format) -> std::io::Result<()> {
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    match format {
        Format::Text => {
            writeln!(
                out,
                "OBJECTS {} referred to by {} target{} of {}{}",
                objects.len(),
                targets,
                if targets == 1 { "" } else { "s" },
                file.baseline.display(),
                if shared { " (shared by two or more)" } else { "" }
            )?;
            let width = objects.iter().map(|o| o.id.len()).max().unwrap_or(0).min(72);
            for o in objects {
                writeln!(out, "{:<width$}  {}", o.id, who(o))?;
            }
        }
        Format::Json => {
            for o in objects {
                let line = serde_json::json!({
                    "event": "object",
                    "object": o.id,
                    "kind": o.kind.name(),
                    "pids": o.targets.iter().filter_map(fdir::Target::pid).collect::<Vec<_>>(),
                    "names": o.targets.iter().map(name).collect::<Vec<_>>(),
                });
                writeln!(out, "{line}")?;
            }
        }
    }
    out.flush()
}

/// `3 processes: sleep (2), bash`: how many, and their command names by count.
fn who(o: &Object) -> String {
    let mut by_name: BTreeMap<&str, usize> = BTreeMap::new();
    for t in &o.targets {
        *by_name.entry(name(t)).or_default() += 1;
    }
    let mut names: Vec<(&str, usize)> = by_name.into_iter().collect();
    names.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
    let shown: Vec<String> = names
        .iter()
        .take(NAMES_SHOWN)
        .map(|&(n, c)| if c == 1 { n.to_owned() } else { format!("{n} ({c})") })
        .collect();
    let more = if names.len() > NAMES_SHOWN { ", …" } else { "" };
    let n = o.targets.len();
    format!("{n} {}: {}{more}", if n == 1 { "process" } else { "processes" }, shown.join(", "))
}

/// A process's command name (`?` for another kind of target).
fn name(t: &fdir::Target) -> &str {
    match t {
        fdir::Target::Process { name, .. } => name,
        _ => "?",
    }
}
