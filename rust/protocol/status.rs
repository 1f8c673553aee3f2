// SPDX-License-Identifier: GPL-2.0

//! NVMe completion status, as nvme-core reports it (the CQE status field
//! shifted right by one: SC in bits 7:0, SCT in 10:8, CRD 12:11, MORE 13,
//! DNR 14).

/// A decoded NVMe status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Status(pub(crate) u16);

/// Status code types.
pub(crate) mod sct {
    /// Generic Command Status.
    pub(crate) const GENERIC: u8 = 0;
    /// Command Specific Status.
    pub(crate) const COMMAND_SPECIFIC: u8 = 1;
}

/// Generic status codes used by the driver.
pub(crate) mod sc {
    /// Invalid Command Opcode.
    pub(crate) const INVALID_OPCODE: u8 = 0x01;
    /// Invalid Field in Command.
    pub(crate) const INVALID_FIELD: u8 = 0x02;
}

impl Status {
    /// Status Code.
    pub(crate) fn sc(self) -> u8 {
        (self.0 & 0xff) as u8
    }
    /// Status Code Type.
    pub(crate) fn sct(self) -> u8 {
        ((self.0 >> 8) & 0x7) as u8
    }
    /// Do Not Retry.
    pub(crate) fn dnr(self) -> bool {
        self.0 & (1 << 14) != 0
    }
    /// More information in the Error log.
    pub(crate) fn more(self) -> bool {
        self.0 & (1 << 13) != 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decode() {
        // Command specific 3Ah (Controller Not Suspended) with DNR.
        let s = Status(0x4000 | 0x100 | 0x3a);
        assert_eq!(s.sc(), 0x3a);
        assert_eq!(s.sct(), sct::COMMAND_SPECIFIC);
        assert!(s.dnr());
        assert!(!s.more());
        let g = Status(0x2002);
        assert_eq!(
            (g.sct(), g.sc(), g.dnr(), g.more()),
            (0, sc::INVALID_FIELD, false, true)
        );
    }
}
