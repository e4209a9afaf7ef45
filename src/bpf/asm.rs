//! A tiny typed eBPF assembler: the instructions the programs of
//! `programs.rs` use, with named labels for jumps, so that each program reads
//! as a listing and is reviewed as one.
//!
//! An instruction is the kernel's `struct bpf_insn` (include/uapi/linux/bpf.h):
//! an opcode byte, the destination and source registers in one byte, a signed
//! 16-bit offset and a signed 32-bit immediate. A map is named by its slot in
//! the program's map table (`Map`), not by a descriptor: the program's bytes,
//! and so their digest, do not depend on the descriptors of one run; `load`
//! puts the descriptors in (`Insn::with_map_fds`).

use std::collections::BTreeMap;

/// A register: r0 (return value), r1–r5 (arguments, clobbered by calls),
/// r6–r9 (kept across calls), r10 (frame pointer, read-only).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reg {
    /// r0.
    R0,
    /// r1.
    R1,
    /// r2.
    R2,
    /// r3.
    R3,
    /// r4.
    R4,
    /// r5.
    R5,
    /// r6.
    R6,
    /// r7.
    R7,
    /// r8.
    R8,
    /// r9.
    R9,
    /// r10, the frame pointer.
    Fp,
}

impl Reg {
    fn n(self) -> u8 {
        match self {
            Reg::R0 => 0,
            Reg::R1 => 1,
            Reg::R2 => 2,
            Reg::R3 => 3,
            Reg::R4 => 4,
            Reg::R5 => 5,
            Reg::R6 => 6,
            Reg::R7 => 7,
            Reg::R8 => 8,
            Reg::R9 => 9,
            Reg::Fp => 10,
        }
    }
}

/// Width of a load or store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Size {
    /// 2 bytes.
    H,
    /// 4 bytes.
    W,
    /// 8 bytes.
    Dw,
}

impl Size {
    fn bits(self) -> u8 {
        match self {
            Size::W => 0x00,
            Size::H => 0x08,
            Size::Dw => 0x18,
        }
    }
}

/// A 64-bit ALU operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Alu {
    /// `dst += src`.
    Add,
    /// `dst -= src`.
    Sub,
    /// `dst *= src`.
    Mul,
    /// `dst |= src`.
    Or,
    /// `dst &= src`.
    And,
    /// `dst <<= src`.
    Lsh,
    /// `dst >>= src` (logical).
    Rsh,
    /// `dst %= src` (unsigned; by 0: `dst` unchanged).
    Mod,
    /// `dst ^= src`.
    Xor,
    /// `dst = src`.
    Mov,
}

impl Alu {
    fn bits(self) -> u8 {
        match self {
            Alu::Add => 0x00,
            Alu::Sub => 0x10,
            Alu::Mul => 0x20,
            Alu::Or => 0x40,
            Alu::And => 0x50,
            Alu::Lsh => 0x60,
            Alu::Rsh => 0x70,
            Alu::Mod => 0x90,
            Alu::Xor => 0xa0,
            Alu::Mov => 0xb0,
        }
    }
}

/// A conditional jump's test (64-bit, unsigned where it matters).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cond {
    /// `==`.
    Eq,
    /// `!=`.
    Ne,
    /// `<`, unsigned.
    Lt,
}

impl Cond {
    fn bits(self) -> u8 {
        match self {
            Cond::Eq => 0x10,
            Cond::Ne => 0x50,
            Cond::Lt => 0xa0,
        }
    }
}

/// A kernel helper the programs call (`enum bpf_func_id`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Helper {
    /// `bpf_map_lookup_elem(map, key)`: a pointer to the value or NULL.
    MapLookupElem = 1,
    /// `bpf_map_update_elem(map, key, value, flags)`.
    MapUpdateElem = 2,
    /// `bpf_ktime_get_ns()`: CLOCK_MONOTONIC in nanoseconds.
    KtimeGetNs = 5,
    /// `bpf_get_current_pid_tgid()`: `tgid << 32 | tid`, in the initial pid
    /// namespace.
    GetCurrentPidTgid = 14,
    /// `bpf_probe_read_kernel(dst, size, unsafe_ptr)`.
    ProbeReadKernel = 113,
    /// `bpf_seq_write(seq, data, len)`: appends to an iterator's output.
    SeqWrite = 127,
    /// `bpf_ringbuf_output(ringbuf, data, size, flags)`.
    RingbufOutput = 130,
}

/// One instruction, as the kernel reads it (8 bytes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Insn {
    /// Opcode.
    pub code: u8,
    /// `src << 4 | dst`.
    pub regs: u8,
    /// Offset (jumps, memory).
    pub off: i16,
    /// Immediate.
    pub imm: i32,
}

/// `BPF_PSEUDO_MAP_FD`: the `src` of a 64-bit immediate load that names a map.
const PSEUDO_MAP_FD: u8 = 1;
const LD_IMM64: u8 = 0x18;

impl Insn {
    fn new(code: u8, dst: Reg, src: Reg, off: i16, imm: i32) -> Insn {
        Insn { code, regs: src.n() << 4 | dst.n(), off, imm }
    }

    /// The instruction's 8 bytes (little-endian fields, as on x86_64).
    pub fn bytes(&self) -> [u8; 8] {
        let off = self.off.to_le_bytes();
        let imm = self.imm.to_le_bytes();
        [self.code, self.regs, off[0], off[1], imm[0], imm[1], imm[2], imm[3]]
    }

    /// The program with each map slot replaced by the map's descriptor
    /// (`fds[slot]`); `None` when a slot has no descriptor.
    pub fn with_map_fds(prog: &[Insn], fds: &[i32]) -> Option<Vec<Insn>> {
        let mut out = prog.to_vec();
        for insn in &mut out {
            if insn.code == LD_IMM64 && insn.regs >> 4 == PSEUDO_MAP_FD {
                let slot = usize::try_from(insn.imm).ok()?;
                insn.imm = *fds.get(slot)?;
            }
        }
        Some(out)
    }
}

/// A map of the program's table, by slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Map(pub u8);

/// A jump's target: a name, and a number for the labels a loop makes
/// (`("next", 3)`); a plain name is number 0.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Label(pub &'static str, pub usize);

impl From<&'static str> for Label {
    fn from(name: &'static str) -> Label {
        Label(name, 0)
    }
}

impl std::fmt::Display for Label {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.1 == 0 { f.write_str(self.0) } else { write!(f, "{}#{}", self.0, self.1) }
    }
}

/// The assembler: instructions in order, with labels for jumps.
#[derive(Debug, Default)]
pub struct Asm {
    insns: Vec<Insn>,
    labels: BTreeMap<Label, usize>,
    /// (instruction index, label): jumps to patch in `finish`.
    fixups: Vec<(usize, Label)>,
}

/// A program that does not assemble: a label missing, defined twice, or a
/// jump too far.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AsmError(pub String);

impl Asm {
    /// An empty program.
    pub fn new() -> Asm {
        Asm::default()
    }

    fn push(&mut self, insn: Insn) -> &mut Asm {
        self.insns.push(insn);
        self
    }

    /// `dst = imm` (sign-extended to 64 bits).
    pub fn mov_imm(&mut self, dst: Reg, imm: i32) -> &mut Asm {
        self.alu_imm(Alu::Mov, dst, imm)
    }

    /// `dst = src`.
    pub fn mov(&mut self, dst: Reg, src: Reg) -> &mut Asm {
        self.alu(Alu::Mov, dst, src)
    }

    /// `dst OP= imm` (64-bit).
    pub fn alu_imm(&mut self, op: Alu, dst: Reg, imm: i32) -> &mut Asm {
        self.push(Insn::new(0x07 | op.bits(), dst, Reg::R0, 0, imm))
    }

    /// `dst OP= src` (64-bit).
    pub fn alu(&mut self, op: Alu, dst: Reg, src: Reg) -> &mut Asm {
        self.push(Insn::new(0x07 | 0x08 | op.bits(), dst, src, 0, 0))
    }

    /// `dst = *(size *)(src + off)`.
    pub fn ldx(&mut self, size: Size, dst: Reg, src: Reg, off: i16) -> &mut Asm {
        self.push(Insn::new(0x01 | 0x60 | size.bits(), dst, src, off, 0))
    }

    /// `*(size *)(dst + off) = src`.
    pub fn stx(&mut self, size: Size, dst: Reg, off: i16, src: Reg) -> &mut Asm {
        self.push(Insn::new(0x03 | 0x60 | size.bits(), dst, src, off, 0))
    }

    /// `*(size *)(dst + off) = imm`.
    pub fn st_imm(&mut self, size: Size, dst: Reg, off: i16, imm: i32) -> &mut Asm {
        self.push(Insn::new(0x02 | 0x60 | size.bits(), dst, Reg::R0, off, imm))
    }

    /// `lock *(u64 *)(dst + off) += src` (`BPF_ATOMIC | BPF_ADD`).
    pub fn atomic_add(&mut self, dst: Reg, off: i16, src: Reg) -> &mut Asm {
        self.push(Insn::new(0x03 | 0xc0 | Size::Dw.bits(), dst, src, off, 0))
    }

    /// `dst = map` (a 64-bit immediate load of the map's slot, two
    /// instructions; the slot becomes the descriptor at load).
    pub fn ld_map(&mut self, dst: Reg, map: Map) -> &mut Asm {
        let mut first = Insn::new(LD_IMM64, dst, Reg::R0, 0, i32::from(map.0));
        first.regs = PSEUDO_MAP_FD << 4 | dst.n();
        self.push(first);
        self.push(Insn { code: 0, regs: 0, off: 0, imm: 0 })
    }

    /// `if dst COND imm goto label`.
    pub fn jmp_imm(&mut self, cond: Cond, dst: Reg, imm: i32, label: impl Into<Label>) -> &mut Asm {
        self.fixups.push((self.insns.len(), label.into()));
        self.push(Insn::new(0x05 | cond.bits(), dst, Reg::R0, 0, imm))
    }

    /// `if dst COND src goto label`.
    pub fn jmp(&mut self, cond: Cond, dst: Reg, src: Reg, label: impl Into<Label>) -> &mut Asm {
        self.fixups.push((self.insns.len(), label.into()));
        self.push(Insn::new(0x05 | 0x08 | cond.bits(), dst, src, 0, 0))
    }

    /// `goto label`.
    pub fn ja(&mut self, label: impl Into<Label>) -> &mut Asm {
        self.fixups.push((self.insns.len(), label.into()));
        self.push(Insn::new(0x05, Reg::R0, Reg::R0, 0, 0))
    }

    /// `call helper` (arguments in r1–r5, result in r0; r1–r5 clobbered).
    pub fn call(&mut self, helper: Helper) -> &mut Asm {
        self.push(Insn::new(0x05 | 0x80, Reg::R0, Reg::R0, 0, helper as i32))
    }

    /// `call` of the kernel function (kfunc) whose BTF id in vmlinux is
    /// `btf_id` (`BPF_PSEUDO_KFUNC_CALL`; arguments and result as for a
    /// helper).
    pub fn call_kfunc(&mut self, btf_id: u32) -> &mut Asm {
        let imm = i32::try_from(btf_id).unwrap_or(i32::MAX);
        // src 2: BPF_PSEUDO_KFUNC_CALL.
        self.push(Insn::new(0x05 | 0x80, Reg::R0, Reg::R2, 0, imm))
    }

    /// `exit` (returns r0).
    pub fn exit(&mut self) -> &mut Asm {
        self.push(Insn::new(0x05 | 0x90, Reg::R0, Reg::R0, 0, 0))
    }

    /// Names the next instruction.
    pub fn label(&mut self, name: impl Into<Label>) -> &mut Asm {
        let name = name.into();
        if self.labels.insert(name, self.insns.len()).is_some() {
            self.fixups.push((usize::MAX, name));
        }
        self
    }

    /// The program, every jump resolved.
    pub fn finish(&self) -> Result<Vec<Insn>, AsmError> {
        let mut out = self.insns.clone();
        for &(at, ref name) in &self.fixups {
            if at == usize::MAX {
                return Err(AsmError(format!("label {name} defined twice")));
            }
            let target = *self.labels.get(name).ok_or_else(|| AsmError(format!("no label {name}")))?;
            let rel = i64::try_from(target).unwrap_or(i64::MAX) - i64::try_from(at).unwrap_or(0) - 1;
            let off = i16::try_from(rel).map_err(|_| AsmError(format!("jump to {name} too far")))?;
            let insn = out.get_mut(at).ok_or_else(|| AsmError(format!("jump to {name} out of the program")))?;
            insn.off = off;
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_as_the_kernel_reads() {
        let mut a = Asm::new();
        a.mov(Reg::R6, Reg::R1)
            .ldx(Size::Dw, Reg::R3, Reg::R6, 0)
            .jmp_imm(Cond::Eq, Reg::R7, 9, "out")
            .call(Helper::GetCurrentPidTgid)
            .label("out")
            .mov_imm(Reg::R0, 0)
            .exit();
        let p = a.finish().unwrap_or_default();
        let bytes: Vec<[u8; 8]> = p.iter().map(Insn::bytes).collect();
        assert_eq!(
            bytes,
            vec![
                [0xbf, 0x16, 0, 0, 0, 0, 0, 0],  // r6 = r1
                [0x79, 0x63, 0, 0, 0, 0, 0, 0],  // r3 = *(u64 *)(r6 + 0)
                [0x15, 0x07, 1, 0, 9, 0, 0, 0],  // if r7 == 9 goto +1
                [0x85, 0x00, 0, 0, 14, 0, 0, 0], // call 14
                [0xb7, 0x00, 0, 0, 0, 0, 0, 0],  // r0 = 0
                [0x95, 0x00, 0, 0, 0, 0, 0, 0],  // exit
            ]
        );
    }

    #[test]
    fn map_slots_become_descriptors() {
        let mut a = Asm::new();
        a.ld_map(Reg::R1, Map(1)).exit();
        let p = a.finish().unwrap_or_default();
        assert_eq!(p.first().map(|i| (i.regs, i.imm)), Some((0x11, 1)));
        let loaded = Insn::with_map_fds(&p, &[7, 9]).unwrap_or_default();
        assert_eq!(loaded.first().map(|i| i.imm), Some(9));
        assert_eq!(Insn::with_map_fds(&p, &[7]), None);
    }

    #[test]
    fn unknown_and_doubled_labels_are_errors() {
        let mut a = Asm::new();
        a.ja("nowhere");
        assert!(a.finish().is_err());
        let mut b = Asm::new();
        b.label("x").label("x").exit();
        assert!(b.finish().is_err());
    }
}
