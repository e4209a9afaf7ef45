//! The fields fdir reads from `/proc/PID/stat`.

/// Parses `/proc/PID/stat`: (command name, state, start time in ticks).
pub fn parse_stat(stat: &[u8]) -> Option<(String, u8, u64)> {
    let open = stat.iter().position(|&b| b == b'(')?;
    let close = stat.iter().rposition(|&b| b == b')')?;
    let name = String::from_utf8_lossy(stat.get(open + 1..close)?).into_owned();
    let rest = stat.get(close + 1..)?;
    let mut fields = rest.split(|&b| b == b' ').filter(|f| !f.is_empty());
    let state = *fields.next()?.first()?;
    // Field 3 is the state; start time is field 22, 19 fields later.
    let start = fields.nth(18)?;
    let start = std::str::from_utf8(start).ok()?.trim().parse().ok()?;
    Some((name, state, start))
}

/// The parent's pid: the `ppid` field (4) of `/proc/PID/stat`.
pub fn parse_stat_ppid(stat: &[u8]) -> Option<u32> {
    let close = stat.iter().rposition(|&b| b == b')')?;
    let rest = stat.get(close + 1..)?;
    // Field 3 is the state; ppid is the next one.
    let ppid = rest.split(|&b| b == b' ').filter(|f| !f.is_empty()).nth(1)?;
    std::str::from_utf8(ppid).ok()?.parse().ok()
}

/// The `flags` field (9) of `/proc/PID/stat` (the kernel's `PF_*` bits).
pub fn parse_stat_flags(stat: &[u8]) -> Option<u64> {
    let close = stat.iter().rposition(|&b| b == b')')?;
    let rest = stat.get(close + 1..)?;
    // Field 3 is the state; flags is field 9, 6 fields later.
    let flags = rest.split(|&b| b == b' ').filter(|f| !f.is_empty()).nth(6)?;
    std::str::from_utf8(flags).ok()?.parse().ok()
}

/// `PF_EXITING`: the task is in `do_exit`.
pub(crate) const PF_EXITING: u64 = 0x4;

/// `PF_KTHREAD`: a kernel thread.
pub(crate) const PF_KTHREAD: u64 = 0x0020_0000;
