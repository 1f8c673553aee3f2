// SPDX-License-Identifier: GPL-2.0

//! TP4159 (Host Managed Live Migration) commands and data structures.
//!
//! Field positions: `shared/docs/tp4159.md` §2 (commands) and §3 (data
//! structures). Where sources disagree the choice made is the one that
//! document recommends, noted at each item.

use super::{
    le16, le32, le64, need,
    sqe::{opcode, Sqe},
    DecodeError,
};

/// Migration Send SEL values (CDW10[7:0]).
pub(crate) mod send_sel {
    /// Suspend.
    pub(crate) const SUSPEND: u8 = 0;
    /// Resume.
    pub(crate) const RESUME: u8 = 1;
    /// Set Controller State.
    pub(crate) const SET_STATE: u8 = 2;
}

/// Suspend Type (Migration Send Suspend, CDW11[23:16]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SuspendType {
    /// Suspend Notification: prepare, do not suspend.
    Notification = 0,
    /// Suspend.
    Suspend = 1,
}

/// Sequence Indicator of Set Controller State (MOS[1:0] = CDW10[17:16]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SeqInd {
    /// Neither first nor last of a multi-command sequence.
    Middle = 0,
    /// First of a sequence.
    First = 1,
    /// Last of a sequence.
    Last = 2,
    /// This command carries the entire state.
    Whole = 3,
}

impl SeqInd {
    /// The indicator of chunk `i` of `n` (n >= 1).
    pub(crate) fn of(i: usize, n: usize) -> Self {
        match (i == 0, i + 1 == n) {
            (true, true) => SeqInd::Whole,
            (true, false) => SeqInd::First,
            (false, true) => SeqInd::Last,
            (false, false) => SeqInd::Middle,
        }
    }
}

/// Migration Send, Suspend: CDW10 SEL=0; CDW11 CNTLID[15:0], STYPE[23:16],
/// DUDMQ[31].
pub(crate) fn suspend(cntlid: u16, stype: SuspendType, dudmq: bool) -> Sqe {
    Sqe::new(opcode::MIGRATION_SEND)
        .with_cdw(10, u32::from(send_sel::SUSPEND))
        .with_cdw(
            11,
            u32::from(cntlid) | ((stype as u32) << 16) | (u32::from(dudmq) << 31),
        )
}

/// Migration Send, Resume: CDW10 SEL=1; CDW11 CNTLID[15:0].
pub(crate) fn resume(cntlid: u16) -> Sqe {
    Sqe::new(opcode::MIGRATION_SEND)
        .with_cdw(10, u32::from(send_sel::RESUME))
        .with_cdw(11, u32::from(cntlid))
}

/// Migration Send, Set Controller State: CDW10 SEL=2, SEQIND in [17:16];
/// CDW11 CNTLID[15:0], CSVI[23:16], CSUUIDI[31:24]; Offset in CDW12/13;
/// NUMD in CDW15, **not** 0's based (tp4159.md §2.3). Returns `None` when
/// `len` is not a whole number of dwords.
pub(crate) fn set_state(
    cntlid: u16,
    seq: SeqInd,
    csvi: u8,
    csuuidi: u8,
    offset: u64,
    len: u32,
) -> Option<Sqe> {
    if len % 4 != 0 {
        return None;
    }
    Some(
        Sqe::new(opcode::MIGRATION_SEND)
            .with_cdw(10, u32::from(send_sel::SET_STATE) | ((seq as u32) << 16))
            .with_cdw(
                11,
                u32::from(cntlid) | (u32::from(csvi) << 16) | (u32::from(csuuidi) << 24),
            )
            .with_cdw(12, offset as u32)
            .with_cdw(13, (offset >> 32) as u32)
            .with_cdw(15, len / 4),
    )
}

/// Migration Receive, Get Controller State: CDW10 SEL=0, CSVI in MOS[7:0]
/// (CDW10[23:16]); CDW11 CNTLID[15:0], CSUUIDI[23:16]; Offset in CDW12/13
/// (dword aligned); NUMD in CDW15, **0's based**. Returns `None` for a
/// length that is zero or not whole dwords, or an unaligned offset.
pub(crate) fn get_state(cntlid: u16, csvi: u8, csuuidi: u8, offset: u64, len: u32) -> Option<Sqe> {
    if len == 0 || len % 4 != 0 || offset % 4 != 0 {
        return None;
    }
    Some(
        Sqe::new(opcode::MIGRATION_RECV)
            .with_cdw(10, u32::from(csvi) << 16)
            .with_cdw(11, u32::from(cntlid) | (u32::from(csuuidi) << 16))
            .with_cdw(12, offset as u32)
            .with_cdw(13, (offset >> 32) as u32)
            .with_cdw(15, len / 4 - 1),
    )
}

/// Track Send, SEL 0 (Log User Data Changes): CDW10 SEL=0, LACT in MOS[3:0]
/// (1 = start, 0 = stop); CDW11 CDQID[15:0].
pub(crate) fn track_user_data(cdqid: u16, start: bool) -> Sqe {
    Sqe::new(opcode::TRACK_SEND)
        .with_cdw(10, u32::from(start) << 16)
        .with_cdw(11, u32::from(cdqid))
}

/// Controller Data Queue, Create a User Data Migration Queue (QT 0) that
/// logs the changes of controller `cntlid`: CDW10 SEL=0, QT in MOS[7:0];
/// CDW11 PC[0], CQS = CNTLID [31:16]; CDW12 CDQSIZE in dwords. PRP1 (the
/// queue memory) belongs to the transport. `None` for a size that is not
/// whole 32-byte entries or has fewer than two entries.
pub(crate) fn cdq_create_udmq(cntlid: u16, contiguous: bool, bytes: u32) -> Option<Sqe> {
    if bytes % 32 != 0 || bytes < 64 {
        return None;
    }
    Some(
        Sqe::new(opcode::CDQ)
            .with_cdw(10, 0)
            .with_cdw(11, u32::from(contiguous) | (u32::from(cntlid) << 16))
            .with_cdw(12, bytes / 4),
    )
}

/// Controller Data Queue, Delete: CDW10 SEL=1; CDW11 CDQID[15:0].
pub(crate) fn cdq_delete(cdqid: u16) -> Sqe {
    Sqe::new(opcode::CDQ)
        .with_cdw(10, 1)
        .with_cdw(11, u32::from(cdqid))
}

/// CQE DW0 of Create CDQ: the CDQID in bits 15:0.
pub(crate) fn cdq_id_of(dw0: u32) -> u16 {
    (dw0 & 0xffff) as u16
}

/// Feature Identifier 21h, Controller Data Queue.
pub(crate) const FID_CDQ: u8 = 0x21;
/// Set Features opcode.
pub(crate) const SET_FEATURES: u8 = 0x09;
/// Get Features opcode.
pub(crate) const GET_FEATURES: u8 = 0x0a;

/// Set Features FID 21h: CDW11 CDQID[15:0], ETPT[31]; CDW12 HP; CDW13 TPT.
pub(crate) fn cdq_set_head(cdqid: u16, head: u32, tpt: Option<u32>) -> Sqe {
    Sqe::new(SET_FEATURES)
        .with_cdw(10, u32::from(FID_CDQ))
        .with_cdw(11, u32::from(cdqid) | (u32::from(tpt.is_some()) << 31))
        .with_cdw(12, head)
        .with_cdw(13, tpt.unwrap_or(0))
}

/// Get Features FID 21h (8-byte data: HP, TPT): CDW11 CDQID[15:0].
pub(crate) fn cdq_get(cdqid: u16) -> Sqe {
    Sqe::new(GET_FEATURES)
        .with_cdw(10, u32::from(FID_CDQ))
        .with_cdw(11, u32::from(cdqid))
}

/// NVP Track Memory Send SEL values (vendor specific, CDW10[7:0]).
pub(crate) mod track_mem_sel {
    /// Start tracking.
    pub(crate) const START: u8 = 0;
    /// Stop tracking.
    pub(crate) const STOP: u8 = 1;
    /// Track Memory Receive: Report and Clear.
    pub(crate) const REPORT: u8 = 0;
}

/// NVP Track Memory Send, Start (vendor C5h): CDW10 SEL=0; CDW11
/// CNTLID[15:0]; CDW12 GS[7:0] (granularity, log2 bytes); CDW13 NR[15:0].
/// The data is NR 16-byte range descriptors
/// ([`super::dirty::encode_ranges`]). `None` when `nr` is 0.
pub(crate) fn track_mem_start(cntlid: u16, gs: u8, nr: u16) -> Option<Sqe> {
    if nr == 0 {
        return None;
    }
    Some(
        Sqe::new(opcode::NVP_TRACK_MEM_SEND)
            .with_cdw(10, u32::from(track_mem_sel::START))
            .with_cdw(11, u32::from(cntlid))
            .with_cdw(12, u32::from(gs))
            .with_cdw(13, u32::from(nr)),
    )
}

/// NVP Track Memory Send, Stop (vendor C5h): CDW10 SEL=1; CDW11
/// CNTLID[15:0]; no data.
pub(crate) fn track_mem_stop(cntlid: u16) -> Sqe {
    Sqe::new(opcode::NVP_TRACK_MEM_SEND)
        .with_cdw(10, u32::from(track_mem_sel::STOP))
        .with_cdw(11, u32::from(cntlid))
}

/// NVP Track Memory Receive, Report and Clear (vendor C6h): CDW10 SEL=0;
/// CDW11 CNTLID[15:0]; CDW12/13 start address (low/high); CDW14 NPG. The
/// data is ceil(NPG / 32) dwords of bitmap. `None` when `npg` is 0.
pub(crate) fn track_mem_report(cntlid: u16, start: u64, npg: u32) -> Option<Sqe> {
    if npg == 0 {
        return None;
    }
    Some(
        Sqe::new(opcode::NVP_TRACK_MEM_RECV)
            .with_cdw(10, u32::from(track_mem_sel::REPORT))
            .with_cdw(11, u32::from(cntlid))
            .with_cdw(12, start as u32)
            .with_cdw(13, (start >> 32) as u32)
            .with_cdw(14, npg),
    )
}

/// CQE DW0 bit 0 of Get Controller State: Controller Suspended.
pub(crate) const GET_STATE_DW0_CSUP: u32 = 1;

/// Command-specific status codes (SCT 1h) of TP4159.
pub(crate) mod sc {
    /// Invalid Controller Data Queue.
    pub(crate) const INVALID_CDQ: u8 = 0x37;
    /// Not Enough Resources.
    pub(crate) const NOT_ENOUGH_RESOURCES: u8 = 0x38;
    /// Controller Suspended.
    pub(crate) const CTRL_SUSPENDED: u8 = 0x39;
    /// Controller Not Suspended.
    pub(crate) const CTRL_NOT_SUSPENDED: u8 = 0x3a;
    /// Controller Data Queue Full.
    pub(crate) const CDQ_FULL: u8 = 0x3b;
}

/// Length of the Controller State header.
pub(crate) const STATE_HDR_LEN: usize = 48;
/// Length of the NVMe Controller State v0 header.
pub(crate) const NVME_STATE_HDR_LEN: usize = 8;
/// Length of one I/O SQ or CQ state entry.
pub(crate) const QUEUE_ENTRY_LEN: usize = 24;

/// The Controller State data structure header (§3.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct StateHeader {
    /// VER (1:0); 0 in every source.
    pub(crate) ver: u16,
    /// CSATTR (2); bit 0: suspended.
    pub(crate) csattr: u8,
    /// NVMe Controller State size in dwords (31:16, 128-bit; the upper 64
    /// bits must be zero).
    pub(crate) nvmecss: u64,
    /// Vendor Specific state size in dwords (47:32, 128-bit).
    pub(crate) vss: u64,
}

impl StateHeader {
    /// Parses the 48-byte header. Rejects a non-zero upper half of either
    /// 128-bit size and sizes whose byte total overflows.
    pub(crate) fn parse(b: &[u8]) -> Result<Self, DecodeError> {
        need(b, STATE_HDR_LEN)?;
        if le64(b, 24) != 0 {
            return Err(DecodeError::BadCount {
                field: "NVMECSS",
                value: u32::MAX,
            });
        }
        if le64(b, 40) != 0 {
            return Err(DecodeError::BadCount {
                field: "VSS",
                value: u32::MAX,
            });
        }
        let h = Self {
            ver: le16(b, 0),
            csattr: b[2],
            nvmecss: le64(b, 16),
            vss: le64(b, 32),
        };
        h.total_len().ok_or(DecodeError::BadCount {
            field: "NVMECSS+VSS",
            value: u32::MAX,
        })?;
        Ok(h)
    }

    /// Encodes the header.
    pub(crate) fn encode(&self) -> [u8; STATE_HDR_LEN] {
        let mut b = [0u8; STATE_HDR_LEN];
        b[0..2].copy_from_slice(&self.ver.to_le_bytes());
        b[2] = self.csattr;
        b[16..24].copy_from_slice(&self.nvmecss.to_le_bytes());
        b[32..40].copy_from_slice(&self.vss.to_le_bytes());
        b
    }

    /// Whether CSATTR says the controller was suspended.
    pub(crate) fn suspended(&self) -> bool {
        self.csattr & 1 != 0
    }

    /// Total length of the structure in bytes: 48 + 4 * (NVMECSS + VSS).
    pub(crate) fn total_len(&self) -> Option<u64> {
        self.nvmecss
            .checked_add(self.vss)?
            .checked_mul(4)?
            .checked_add(STATE_HDR_LEN as u64)
    }
}

/// One I/O Submission Queue State entry (§3.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct SqState {
    /// IOSQPRP1.
    pub(crate) prp1: u64,
    /// IOSQQSIZE, 0's based.
    pub(crate) qsize: u16,
    /// IOSQQID.
    pub(crate) qid: u16,
    /// IOSQCQID.
    pub(crate) cqid: u16,
    /// IOSQA: bit 0 PC, bits 2:1 QPRIO.
    pub(crate) attr: u16,
    /// IOSQHP.
    pub(crate) head: u16,
    /// IOSQTP.
    pub(crate) tail: u16,
}

/// One I/O Completion Queue State entry (§3.4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct CqState {
    /// IOCQPRP1.
    pub(crate) prp1: u64,
    /// IOCQQSIZE, 0's based.
    pub(crate) qsize: u16,
    /// IOCQQID.
    pub(crate) qid: u16,
    /// IOCQHP.
    pub(crate) head: u16,
    /// IOCQTP.
    pub(crate) tail: u16,
    /// IOCQA: bit 0 PC, bit 1 IEN, bit 2 S0PT, bits 31:16 IV.
    pub(crate) attr: u32,
}

impl SqState {
    fn parse(e: &[u8]) -> Self {
        Self {
            prp1: le64(e, 0),
            qsize: le16(e, 8),
            qid: le16(e, 10),
            cqid: le16(e, 12),
            attr: le16(e, 14),
            head: le16(e, 16),
            tail: le16(e, 18),
        }
    }
    /// Physically contiguous.
    pub(crate) fn pc(&self) -> bool {
        self.attr & 1 != 0
    }
    /// Queue priority.
    pub(crate) fn qprio(&self) -> u8 {
        ((self.attr >> 1) & 3) as u8
    }
    /// Number of entries (QSIZE is 0's based).
    pub(crate) fn entries(&self) -> u32 {
        u32::from(self.qsize) + 1
    }
}

impl CqState {
    fn parse(e: &[u8]) -> Self {
        Self {
            prp1: le64(e, 0),
            qsize: le16(e, 8),
            qid: le16(e, 10),
            head: le16(e, 12),
            tail: le16(e, 14),
            attr: le32(e, 16),
        }
    }
    /// Physically contiguous.
    pub(crate) fn pc(&self) -> bool {
        self.attr & 1 != 0
    }
    /// Interrupts enabled.
    pub(crate) fn ien(&self) -> bool {
        self.attr & 2 != 0
    }
    /// Slot 0 Phase Tag.
    pub(crate) fn s0pt(&self) -> bool {
        self.attr & 4 != 0
    }
    /// Interrupt vector.
    pub(crate) fn iv(&self) -> u16 {
        (self.attr >> 16) as u16
    }
    /// Number of entries (QSIZE is 0's based).
    pub(crate) fn entries(&self) -> u32 {
        u32::from(self.qsize) + 1
    }
}

/// A parsed, bounds-checked NVMe Controller State v0 (§3.2).
#[derive(Debug, Clone, Copy)]
pub(crate) struct NvmeState<'a> {
    /// VER of the NVMe controller state format.
    pub(crate) ver: u16,
    /// Number of I/O SQ entries.
    pub(crate) niosq: u16,
    /// Number of I/O CQ entries.
    pub(crate) niocq: u16,
    buf: &'a [u8],
}

impl<'a> NvmeState<'a> {
    /// Parses `b`, which must be exactly the NVMe Controller State (its
    /// length is 4 * NVMECSS from the outer header).
    pub(crate) fn parse(b: &'a [u8]) -> Result<Self, DecodeError> {
        need(b, NVME_STATE_HDR_LEN)?;
        let niosq = le16(b, 2);
        let niocq = le16(b, 4);
        let want = NVME_STATE_HDR_LEN + QUEUE_ENTRY_LEN * (niosq as usize + niocq as usize);
        if b.len() != want {
            return Err(DecodeError::BadCount {
                field: "NIOSQ+NIOCQ",
                value: b.len() as u32,
            });
        }
        Ok(Self {
            ver: le16(b, 0),
            niosq,
            niocq,
            buf: b,
        })
    }

    /// SQ entry `i`.
    pub(crate) fn sq(&self, i: u16) -> Option<SqState> {
        if i >= self.niosq {
            return None;
        }
        let o = NVME_STATE_HDR_LEN + QUEUE_ENTRY_LEN * i as usize;
        Some(SqState::parse(&self.buf[o..o + QUEUE_ENTRY_LEN]))
    }

    /// CQ entry `i`.
    pub(crate) fn cq(&self, i: u16) -> Option<CqState> {
        if i >= self.niocq {
            return None;
        }
        let o = NVME_STATE_HDR_LEN + QUEUE_ENTRY_LEN * (self.niosq as usize + i as usize);
        Some(CqState::parse(&self.buf[o..o + QUEUE_ENTRY_LEN]))
    }
}

/// Encodes an NVMe Controller State v0 into `out`; returns the length used,
/// or `None` if `out` is too small.
pub(crate) fn encode_nvme_state(sqs: &[SqState], cqs: &[CqState], out: &mut [u8]) -> Option<usize> {
    let n = NVME_STATE_HDR_LEN + QUEUE_ENTRY_LEN * (sqs.len() + cqs.len());
    if out.len() < n || sqs.len() > u16::MAX as usize || cqs.len() > u16::MAX as usize {
        return None;
    }
    out[..n].fill(0);
    out[2..4].copy_from_slice(&(sqs.len() as u16).to_le_bytes());
    out[4..6].copy_from_slice(&(cqs.len() as u16).to_le_bytes());
    let mut o = NVME_STATE_HDR_LEN;
    for s in sqs {
        let e = &mut out[o..o + QUEUE_ENTRY_LEN];
        e[0..8].copy_from_slice(&s.prp1.to_le_bytes());
        e[8..10].copy_from_slice(&s.qsize.to_le_bytes());
        e[10..12].copy_from_slice(&s.qid.to_le_bytes());
        e[12..14].copy_from_slice(&s.cqid.to_le_bytes());
        e[14..16].copy_from_slice(&s.attr.to_le_bytes());
        e[16..18].copy_from_slice(&s.head.to_le_bytes());
        e[18..20].copy_from_slice(&s.tail.to_le_bytes());
        o += QUEUE_ENTRY_LEN;
    }
    for c in cqs {
        let e = &mut out[o..o + QUEUE_ENTRY_LEN];
        e[0..8].copy_from_slice(&c.prp1.to_le_bytes());
        e[8..10].copy_from_slice(&c.qsize.to_le_bytes());
        e[10..12].copy_from_slice(&c.qid.to_le_bytes());
        e[12..14].copy_from_slice(&c.head.to_le_bytes());
        e[14..16].copy_from_slice(&c.tail.to_le_bytes());
        e[16..20].copy_from_slice(&c.attr.to_le_bytes());
        o += QUEUE_ENTRY_LEN;
    }
    Some(n)
}

/// Supported Controller State Formats (Identify CNS 20h, §3.5).
#[derive(Debug, Clone, Copy)]
pub(crate) struct StateFormats<'a> {
    /// Number of NVMe controller state versions.
    pub(crate) nv: u8,
    /// Number of vendor state UUIDs.
    pub(crate) nuuid: u8,
    buf: &'a [u8],
}

impl<'a> StateFormats<'a> {
    /// Parses the structure (NV is a plain count, not 0's based: §7).
    pub(crate) fn parse(b: &'a [u8]) -> Result<Self, DecodeError> {
        need(b, 2)?;
        let (nv, nuuid) = (b[0], b[1]);
        need(b, 2 + 2 * nv as usize + 16 * nuuid as usize)?;
        Ok(Self { nv, nuuid, buf: b })
    }

    /// Version `k` (1-based: the CSVI that selects it).
    pub(crate) fn version(&self, csvi: u8) -> Option<u16> {
        if csvi == 0 || csvi > self.nv {
            return None;
        }
        Some(le16(self.buf, 2 + 2 * (csvi as usize - 1)))
    }

    /// The CSVI (1-based) of format version `ver`.
    pub(crate) fn csvi_of(&self, ver: u16) -> Option<u8> {
        (1..=self.nv).find(|&k| self.version(k) == Some(ver))
    }

    /// UUID `k` (1-based: the CSUUIDI that selects it).
    pub(crate) fn uuid(&self, csuuidi: u8) -> Option<[u8; 16]> {
        if csuuidi == 0 || csuuidi > self.nuuid {
            return None;
        }
        let o = 2 + 2 * self.nv as usize + 16 * (csuuidi as usize - 1);
        let mut u = [0u8; 16];
        u.copy_from_slice(&self.buf[o..o + 16]);
        Some(u)
    }

    /// The CSUUIDI (1-based) of `uuid`.
    pub(crate) fn csuuidi_of(&self, uuid: &[u8; 16]) -> Option<u8> {
        (1..=self.nuuid).find(|&k| self.uuid(k).as_ref() == Some(uuid))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suspend_resume_encoding() {
        let s = suspend(0x1234, SuspendType::Suspend, true);
        assert_eq!(s.dw[0], 0x41);
        assert_eq!(s.dw[10], 0);
        assert_eq!(s.dw[11], 0x8001_1234);
        let n = suspend(7, SuspendType::Notification, false);
        assert_eq!(n.dw[11], 7);
        let r = resume(0xbeef);
        assert_eq!((r.dw[0], r.dw[10], r.dw[11]), (0x41, 1, 0xbeef));
        for d in [&s, &n, &r] {
            assert!(d.dw[12..].iter().all(|&x| x == 0));
        }
    }

    #[test]
    fn set_state_encoding() {
        // Worked example (§3.8): the 104-byte blob in one command.
        let s = set_state(3, SeqInd::Whole, 1, 0, 0, 104).unwrap();
        assert_eq!(s.dw[10], 0x0003_0002);
        assert_eq!(s.dw[11], 0x0001_0003);
        assert_eq!(s.dw[15], 26);
        let m = set_state(0xffff, SeqInd::Middle, 0xfe, 0xab, 0x1_0000_0040, 8).unwrap();
        assert_eq!(m.dw[10], 2);
        assert_eq!(m.dw[11], 0xabfe_ffff);
        assert_eq!((m.dw[12], m.dw[13], m.dw[15]), (0x40, 1, 2));
        assert!(set_state(1, SeqInd::First, 1, 0, 0, 6).is_none());
        assert_eq!(
            set_state(1, SeqInd::Last, 1, 0, 0, 4).unwrap().dw[10],
            0x0002_0002
        );
        assert_eq!(
            set_state(1, SeqInd::First, 1, 0, 0, 4).unwrap().dw[10],
            0x0001_0002
        );
    }

    #[test]
    fn track_and_cdq_encoding() {
        let t = track_user_data(0x1234, true);
        assert_eq!((t.dw[0], t.dw[10], t.dw[11]), (0x3d, 0x0001_0000, 0x1234));
        assert_eq!(track_user_data(7, false).dw[10], 0);
        let c = cdq_create_udmq(0x0102, true, 4096).unwrap();
        assert_eq!(
            (c.dw[0], c.dw[10], c.dw[11], c.dw[12]),
            (0x45, 0, 0x0102_0001, 1024)
        );
        assert_eq!(cdq_create_udmq(3, false, 64).unwrap().dw[11], 0x0003_0000);
        assert!(cdq_create_udmq(3, true, 32).is_none());
        assert!(cdq_create_udmq(3, true, 100).is_none());
        let d = cdq_delete(9);
        assert_eq!((d.dw[0], d.dw[10], d.dw[11]), (0x45, 1, 9));
        assert_eq!(cdq_id_of(0xdead_0005), 5);
        let h = cdq_set_head(2, 17, Some(30));
        assert_eq!(
            (h.dw[0], h.dw[10], h.dw[11], h.dw[12], h.dw[13]),
            (9, 0x21, 0x8000_0002, 17, 30)
        );
        let h = cdq_set_head(2, 17, None);
        assert_eq!((h.dw[11], h.dw[13]), (2, 0));
        let g = cdq_get(4);
        assert_eq!((g.dw[0], g.dw[10], g.dw[11]), (0x0a, 0x21, 4));
    }

    #[test]
    fn nvp_track_mem_encoding() {
        let s = track_mem_start(0x1234, 12, 16).unwrap();
        assert_eq!(
            (s.dw[0], s.dw[10], s.dw[11], s.dw[12], s.dw[13], s.dw[14]),
            (0xc5, 0, 0x1234, 12, 16, 0)
        );
        assert!(track_mem_start(1, 12, 0).is_none());
        let p = track_mem_stop(7);
        assert_eq!((p.dw[0], p.dw[10], p.dw[11], p.dw[12]), (0xc5, 1, 7, 0));
        let r = track_mem_report(3, 0x1_2345_6000, 524288).unwrap();
        assert_eq!(
            (r.dw[0], r.dw[10], r.dw[11], r.dw[12], r.dw[13], r.dw[14], r.dw[15]),
            (0xc6, 0, 3, 0x2345_6000, 1, 524288, 0)
        );
        assert!(track_mem_report(3, 0, 0).is_none());
        for d in [&s, &p, &r] {
            assert!(d.dw[1..10].iter().all(|&x| x == 0));
        }
        // C5h transfers host to controller, C6h controller to host (opcode
        // bits 1:0, which nvme-core's nvme_is_write() reads).
        assert_eq!(s.opcode() & 3, 1);
        assert_eq!(r.opcode() & 3, 2);
    }

    #[test]
    fn seqind_of() {
        assert_eq!(SeqInd::of(0, 1), SeqInd::Whole);
        assert_eq!(SeqInd::of(0, 3), SeqInd::First);
        assert_eq!(SeqInd::of(1, 3), SeqInd::Middle);
        assert_eq!(SeqInd::of(2, 3), SeqInd::Last);
    }

    #[test]
    fn get_state_encoding() {
        // First 48 bytes: NUMD = 11 (0's based).
        let g = get_state(2, 1, 0, 0, 48).unwrap();
        assert_eq!(g.dw[0], 0x42);
        assert_eq!(g.dw[10], 0x0001_0000);
        assert_eq!(g.dw[11], 2);
        assert_eq!(g.dw[15], 11);
        let v = get_state(9, 0, 3, 0x2_0000_0008, 4).unwrap();
        assert_eq!(
            (v.dw[10], v.dw[11], v.dw[12], v.dw[13], v.dw[15]),
            (0, 0x0003_0009, 8, 2, 0)
        );
        assert!(get_state(1, 1, 0, 2, 4).is_none());
        assert!(get_state(1, 1, 0, 0, 0).is_none());
        assert!(get_state(1, 1, 0, 0, 5).is_none());
    }

    fn worked_example() -> [u8; 104] {
        let mut b = [0u8; 104];
        let h = StateHeader {
            ver: 0,
            csattr: 1,
            nvmecss: 14,
            vss: 0,
        };
        b[..48].copy_from_slice(&h.encode());
        let sq = SqState {
            prp1: 0x1000,
            qsize: 63,
            qid: 1,
            cqid: 1,
            attr: 1 | (2 << 1),
            head: 5,
            tail: 9,
        };
        let cq = CqState {
            prp1: 0x2000,
            qsize: 63,
            qid: 1,
            head: 4,
            tail: 5,
            attr: (3 << 16) | 4 | 2 | 1,
        };
        assert_eq!(encode_nvme_state(&[sq], &[cq], &mut b[48..]), Some(56));
        b
    }

    #[test]
    fn state_worked_example() {
        let b = worked_example();
        // Byte positions from §3.8.
        assert_eq!(b[2], 1);
        assert_eq!(b[16], 14);
        assert_eq!(&b[0x30..0x36], &[0, 0, 1, 0, 1, 0]);
        assert_eq!(&b[0x38..0x40], &0x1000u64.to_le_bytes());
        assert_eq!(&b[0x40..0x42], &63u16.to_le_bytes());
        assert_eq!(&b[0x50..0x58], &0x2000u64.to_le_bytes());
        assert_eq!(&b[0x60..0x64], &0x0003_0007u32.to_le_bytes());
        let h = StateHeader::parse(&b).unwrap();
        assert!(h.suspended());
        assert_eq!(h.total_len(), Some(104));
        let s = NvmeState::parse(&b[48..104]).unwrap();
        assert_eq!((s.ver, s.niosq, s.niocq), (0, 1, 1));
        let sq = s.sq(0).unwrap();
        assert_eq!(
            (sq.prp1, sq.entries(), sq.qid, sq.cqid, sq.head, sq.tail),
            (0x1000, 64, 1, 1, 5, 9)
        );
        assert!(sq.pc());
        assert_eq!(sq.qprio(), 2);
        let cq = s.cq(0).unwrap();
        assert_eq!(
            (cq.prp1, cq.entries(), cq.qid, cq.head, cq.tail, cq.iv()),
            (0x2000, 64, 1, 4, 5, 3)
        );
        assert!(cq.pc() && cq.ien() && cq.s0pt());
        assert!(s.sq(1).is_none());
        assert!(s.cq(1).is_none());
    }

    #[test]
    fn state_bounds() {
        let b = worked_example();
        assert!(NvmeState::parse(&b[48..103]).is_err());
        assert!(NvmeState::parse(&b[48..]).is_ok());
        let mut big = [0u8; 200];
        big[..104].copy_from_slice(&b);
        assert!(NvmeState::parse(&big[48..]).is_err()); // lying NIOSQ/NIOCQ vs length
        let mut h = b;
        h[24] = 1; // upper 64 bits of NVMECSS
        assert!(StateHeader::parse(&h).is_err());
        let mut h = b;
        h[40] = 1; // upper 64 bits of VSS
        assert!(StateHeader::parse(&h).is_err());
        let mut h = b;
        h[16..24].copy_from_slice(&u64::MAX.to_le_bytes());
        assert!(StateHeader::parse(&h).is_err()); // overflowing size
        assert!(StateHeader::parse(&b[..47]).is_err());
        let mut small = [0u8; 20];
        assert_eq!(
            encode_nvme_state(&[SqState::default()], &[], &mut small),
            None
        );
    }

    #[test]
    fn formats() {
        let mut b = [0u8; 4096];
        b[0] = 2;
        b[1] = 1;
        b[2..4].copy_from_slice(&0u16.to_le_bytes());
        b[4..6].copy_from_slice(&7u16.to_le_bytes());
        for i in 0..16 {
            b[6 + i] = 0xa0 + i as u8;
        }
        let f = StateFormats::parse(&b).unwrap();
        assert_eq!(f.version(1), Some(0));
        assert_eq!(f.version(2), Some(7));
        assert_eq!(f.version(0), None);
        assert_eq!(f.version(3), None);
        assert_eq!(f.csvi_of(7), Some(2));
        assert_eq!(f.csvi_of(0), Some(1));
        let u = f.uuid(1).unwrap();
        assert_eq!(u[0], 0xa0);
        assert_eq!(u[15], 0xaf);
        assert_eq!(f.csuuidi_of(&u), Some(1));
        assert_eq!(f.uuid(2), None);
        assert!(StateFormats::parse(&b[..21]).is_err());
        assert!(StateFormats::parse(&b[..22]).is_ok());
    }
}
