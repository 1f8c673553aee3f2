// SPDX-License-Identifier: GPL-2.0

//! Admin submission queue entries.
//!
//! An [`Sqe`] is the 64-byte command as 16 dwords in CPU order; the
//! submitter converts it to little endian. Command identifier (CDW0 bits
//! 31:16) and data pointers (DW6-9) belong to the transport and stay zero.

/// Admin command opcodes used by the driver.
pub(crate) mod opcode {
    /// Identify.
    pub(crate) const IDENTIFY: u8 = 0x06;
    /// Virtualization Management.
    pub(crate) const VIRT_MGMT: u8 = 0x1c;
    /// Track Send (TP4159).
    pub(crate) const TRACK_SEND: u8 = 0x3d;
    /// Track Receive (TP4159).
    pub(crate) const TRACK_RECV: u8 = 0x3e;
    /// Migration Send (TP4159).
    pub(crate) const MIGRATION_SEND: u8 = 0x41;
    /// Migration Receive (TP4159).
    pub(crate) const MIGRATION_RECV: u8 = 0x42;
    /// Controller Data Queue (TP4159).
    pub(crate) const CDQ: u8 = 0x45;
    /// NVP Track Memory Send (vendor specific, the project's device model).
    pub(crate) const NVP_TRACK_MEM_SEND: u8 = 0xc5;
    /// NVP Track Memory Receive (vendor specific, the project's device model).
    pub(crate) const NVP_TRACK_MEM_RECV: u8 = 0xc6;
}

/// One 64-byte submission queue entry, as 16 dwords in CPU byte order.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) struct Sqe {
    /// CDW0..CDW15.
    pub(crate) dw: [u32; 16],
}

impl Sqe {
    /// A command with `opcode` in CDW0 bits 7:0 and everything else zero.
    pub(crate) fn new(opcode: u8) -> Self {
        let mut s = Self::default();
        s.dw[0] = u32::from(opcode);
        s
    }

    /// The opcode (CDW0 bits 7:0).
    pub(crate) fn opcode(&self) -> u8 {
        (self.dw[0] & 0xff) as u8
    }

    /// Sets the namespace identifier (DW1).
    pub(crate) fn with_nsid(mut self, nsid: u32) -> Self {
        self.dw[1] = nsid;
        self
    }

    /// Sets command dword `n` (10..=15).
    pub(crate) fn with_cdw(mut self, n: usize, v: u32) -> Self {
        if (10..=15).contains(&n) {
            self.dw[n] = v;
        }
        self
    }

    /// The 64 bytes in wire (little-endian) order.
    pub(crate) fn to_bytes(&self) -> [u8; 64] {
        let mut b = [0u8; 64];
        for (i, d) in self.dw.iter().enumerate() {
            b[i * 4..i * 4 + 4].copy_from_slice(&d.to_le_bytes());
        }
        b
    }

    /// The 16 dwords in wire (little-endian) order.
    pub(crate) fn to_le_dwords(&self) -> [u32; 16] {
        let mut d = [0u32; 16];
        for (o, i) in d.iter_mut().zip(self.dw.iter()) {
            *o = i.to_le();
        }
        d
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout() {
        let s = Sqe::new(0x06)
            .with_nsid(0x1122_3344)
            .with_cdw(10, 0xaabb_ccdd);
        let b = s.to_bytes();
        assert_eq!(b[0], 0x06);
        assert_eq!(&b[1..4], &[0, 0, 0]); // FUSE, PSDT, CID stay zero
        assert_eq!(&b[4..8], &[0x44, 0x33, 0x22, 0x11]);
        assert_eq!(&b[40..44], &[0xdd, 0xcc, 0xbb, 0xaa]);
        assert!(b[8..40].iter().all(|&x| x == 0)); // CDW2-3, MPTR, DPTR
        assert_eq!(s.opcode(), 0x06);
    }

    #[test]
    fn cdw_out_of_range_ignored() {
        let s = Sqe::new(1).with_cdw(9, 5).with_cdw(16, 5);
        assert_eq!(s, Sqe::new(1));
    }
}
