//! The one thing fdir needs from the kernel's BTF (`/sys/kernel/btf/vmlinux`):
//! the type id of a function (`BTF_KIND_FUNC`) by name, which an fexit
//! program names at load (`attach_btf_id`), and the offset of a member of
//! a kernel struct (what CO-RE relocations do, for one field). A pure parser over the bytes
//! (include/uapi/linux/btf.h); malformed input is `None`, never a panic.

/// `BTF_KIND_FUNC`.
const KIND_FUNC: u32 = 12;
/// `BTF_KIND_STRUCT`.
const KIND_STRUCT: u32 = 4;
const MAGIC: u16 = 0xeb9f;

fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    let s = b.get(at..at.checked_add(4)?)?;
    Some(u32::from_ne_bytes([*s.first()?, *s.get(1)?, *s.get(2)?, *s.get(3)?]))
}

/// The bytes of the name at `off` in the string section.
fn name(strings: &[u8], off: u32) -> Option<&[u8]> {
    let rest = strings.get(usize::try_from(off).ok()?..)?;
    let end = rest.iter().position(|&c| c == 0)?;
    rest.get(..end)
}

/// One type of the type section.
struct Type<'a> {
    id: u32,
    kind: u32,
    name_off: u32,
    info: u32,
    /// The data after the 12-byte `struct btf_type` (members, params...).
    extra: &'a [u8],
}

/// The type and string sections, or `None` when `btf` is not BTF this
/// parser reads.
fn sections(btf: &[u8]) -> Option<(&[u8], &[u8])> {
    let magic = u16::from_ne_bytes([*btf.first()?, *btf.get(1)?]);
    if magic != MAGIC {
        return None;
    }
    let hdr_len = usize::try_from(u32_at(btf, 4)?).ok()?;
    let type_off = usize::try_from(u32_at(btf, 8)?).ok()?;
    let type_len = usize::try_from(u32_at(btf, 12)?).ok()?;
    let str_off = usize::try_from(u32_at(btf, 16)?).ok()?;
    let str_len = usize::try_from(u32_at(btf, 20)?).ok()?;
    let types_start = hdr_len.checked_add(type_off)?;
    let types = btf.get(types_start..types_start.checked_add(type_len)?)?;
    let strs_start = hdr_len.checked_add(str_off)?;
    let strings = btf.get(strs_start..strs_start.checked_add(str_len)?)?;
    Some((types, strings))
}

/// Calls `f` on each type in order; `None` on a malformed section.
fn each_type<'a>(types: &'a [u8], mut f: impl FnMut(&Type<'a>)) -> Option<()> {
    let mut at = 0usize;
    let mut id = 1u32;
    while at < types.len() {
        let name_off = u32_at(types, at)?;
        let info = u32_at(types, at + 4)?;
        let vlen = usize::try_from(info & 0xffff).ok()?;
        let kind = (info >> 24) & 0x1f;
        // Each kind's data after the 12-byte `struct btf_type`.
        let extra = match kind {
            1 | 14 | 17 => 4,          // INT, VAR, DECL_TAG
            3 => 12,                   // ARRAY
            4 | 5 => vlen * 12,        // STRUCT, UNION: btf_member
            6 | 13 => vlen * 8,        // ENUM: btf_enum; FUNC_PROTO: btf_param
            15 | 19 => vlen * 12,      // DATASEC: btf_var_secinfo; ENUM64
            2 | 7..=12 | 16 | 18 => 0, // PTR, FWD, TYPEDEF, VOLATILE, CONST, RESTRICT, FUNC, FLOAT, TYPE_TAG
            _ => return None,
        };
        let start = at.checked_add(12)?;
        let end = start.checked_add(extra)?;
        f(&Type { id, kind, name_off, info, extra: types.get(start..end)? });
        at = end;
        id = id.checked_add(1)?;
    }
    Some(())
}

/// The type ids of the functions named in `wanted` (in its order; `None`
/// for one BTF does not have), or `None` when `btf` is not BTF this parser
/// reads.
pub fn func_ids(btf: &[u8], wanted: &[&str]) -> Option<Vec<Option<u32>>> {
    let (types, strings) = sections(btf)?;
    let mut out: Vec<Option<u32>> = vec![None; wanted.len()];
    each_type(types, |t| {
        if t.kind == KIND_FUNC
            && let Some(n) = name(strings, t.name_off)
        {
            for (slot, w) in out.iter_mut().zip(wanted) {
                if slot.is_none() && n == w.as_bytes() {
                    *slot = Some(t.id);
                }
            }
        }
    })?;
    Some(out)
}

/// The byte offset of `member` in the first `struct NAME` (a direct
/// member, not a bitfield), or `None`.
pub fn member_offset(btf: &[u8], strukt: &str, member: &str) -> Option<u32> {
    let (types, strings) = sections(btf)?;
    let mut found = None;
    each_type(types, |t| {
        if found.is_some() || t.kind != KIND_STRUCT || name(strings, t.name_off) != Some(strukt.as_bytes()) {
            return;
        }
        let bitfields = t.info >> 31 == 1;
        for m in t.extra.chunks_exact(12) {
            let (Some(n), Some(off)) = (u32_at(m, 0), u32_at(m, 8)) else { continue };
            if name(strings, n) == Some(member.as_bytes()) {
                let (bits, size) = if bitfields { (off & 0xff_ffff, off >> 24) } else { (off, 0) };
                if size == 0 && bits % 8 == 0 {
                    found = Some(bits / 8);
                }
                return;
            }
        }
    })?;
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A BTF blob: header, then the given types and strings.
    fn blob(types: &[u8], strings: &[u8]) -> Vec<u8> {
        let mut b = Vec::new();
        b.extend_from_slice(&MAGIC.to_ne_bytes());
        b.extend_from_slice(&[1, 0]); // version, flags
        let len = |s: &[u8]| u32::try_from(s.len()).unwrap_or(u32::MAX);
        for v in [24u32, 0, len(types), len(types), len(strings)] {
            b.extend_from_slice(&v.to_ne_bytes());
        }
        b.extend_from_slice(types);
        b.extend_from_slice(strings);
        b
    }

    fn ty(name_off: u32, kind: u32, vlen: u32, size: u32) -> Vec<u8> {
        let mut t = Vec::new();
        for v in [name_off, kind << 24 | vlen, size] {
            t.extend_from_slice(&v.to_ne_bytes());
        }
        t
    }

    #[test]
    fn finds_functions_past_other_kinds() {
        let strings = b"\0int\0mem_write\0s\0";
        let mut types = ty(1, 1, 0, 4); // 1: int
        types.extend_from_slice(&[0; 4]);
        types.extend(ty(15, 4, 1, 8)); // 2: struct s { one member }
        types.extend_from_slice(&1u32.to_ne_bytes()); // member "int"
        types.extend_from_slice(&1u32.to_ne_bytes());
        types.extend_from_slice(&0u32.to_ne_bytes());
        types.extend(ty(0, 13, 1, 1)); // 3: func_proto (one param)
        types.extend_from_slice(&[0; 8]);
        types.extend(ty(5, 12, 0, 3)); // 4: func mem_write
        let b = blob(&types, strings);
        assert_eq!(func_ids(&b, &["mem_write", "absent"]), Some(vec![Some(4), None]));
        assert_eq!(member_offset(&b, "s", "int"), Some(0));
        assert_eq!(member_offset(&b, "s", "absent"), None);
    }

    #[test]
    fn refuses_what_is_not_btf() {
        assert_eq!(func_ids(b"", &["x"]), None);
        assert_eq!(func_ids(&[0u8; 64], &["x"]), None);
        let mut b = blob(&ty(0, 31, 0, 0), b"\0");
        assert_eq!(func_ids(&b, &["x"]), None);
        b.truncate(30);
        assert_eq!(func_ids(&b, &["x"]), None);
    }

    #[test]
    fn reads_this_kernel_if_it_has_btf() {
        if let Ok(b) = std::fs::read("/sys/kernel/btf/vmlinux") {
            let ids = func_ids(&b, &["schedule"]);
            assert!(matches!(ids.as_deref(), Some([Some(_)])), "{ids:?}");
            let tgid = member_offset(&b, "task_struct", "tgid");
            let pid = member_offset(&b, "task_struct", "pid");
            assert!(tgid.is_some() && pid.map(|p| p + 4) == tgid, "{pid:?} {tgid:?}");
        }
    }
}
