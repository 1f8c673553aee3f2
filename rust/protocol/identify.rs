// SPDX-License-Identifier: GPL-2.0

//! Identify (admin opcode 06h): command encoding and the structures the
//! driver reads at probe — Identify Controller (CNS 01h), Primary Controller
//! Capabilities (CNS 14h) and the Secondary Controller List (CNS 15h).

use super::{
    dirty::{
        TrackCaps,
        NVPT_LEN,
        NVPT_OFFSET, //
    },
    le16,
    le32,
    need,
    sqe::{
        opcode,
        Sqe, //
    },
    DecodeError, //
};

/// Every Identify data structure is 4 KiB.
pub(crate) const IDENTIFY_LEN: usize = 4096;

/// Controller or Namespace Structure values used by the driver.
pub(crate) mod cns {
    /// Identify Controller.
    pub(crate) const CTRL: u8 = 0x01;
    /// Primary Controller Capabilities.
    pub(crate) const PRIMARY_CTRL_CAPS: u8 = 0x14;
    /// Secondary Controller List.
    pub(crate) const SECONDARY_CTRL_LIST: u8 = 0x15;
    /// Supported Controller State Formats (TP4159).
    pub(crate) const CTRL_STATE_FORMATS: u8 = 0x20;
}

/// OACS bit 11: Host Managed Live Migration Support.
pub(crate) const OACS_HMLMS: u16 = 1 << 11;
/// OACS bit 7: Virtualization Management supported.
pub(crate) const OACS_VIRT_MGMT: u16 = 1 << 7;

/// Encodes Identify: CDW10 = CNS (7:0) | CNTID (31:16), CDW11 = CNSSI (15:0)
/// | CSI (31:24).
pub(crate) fn identify(cns: u8, cntid: u16, nsid: u32) -> Sqe {
    Sqe::new(opcode::IDENTIFY)
        .with_nsid(nsid)
        .with_cdw(10, u32::from(cns) | (u32::from(cntid) << 16))
}

/// The Identify Controller fields the driver uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct IdCtrl {
    /// PCI Vendor ID (bytes 1:0).
    pub(crate) vid: u16,
    /// Serial Number (bytes 23:4), ASCII, space padded.
    pub(crate) sn: [u8; 20],
    /// Model Number (bytes 63:24).
    pub(crate) mn: [u8; 40],
    /// Controller Multi-Path I/O and Namespace Sharing Capabilities (byte 76).
    pub(crate) cmic: u8,
    /// Maximum Data Transfer Size (byte 77), a power of two in units of
    /// CAP.MPSMIN; 0 means no limit.
    pub(crate) mdts: u8,
    /// Controller ID (bytes 79:78).
    pub(crate) cntlid: u16,
    /// Version (bytes 83:80).
    pub(crate) ver: u32,
    /// Optional Admin Command Support (bytes 257:256).
    pub(crate) oacs: u16,
    /// Number of Namespaces (bytes 519:516).
    pub(crate) nn: u32,
    /// TP4159 fields (bytes 587:570).
    pub(crate) lm: LmCaps,
    /// The device model's vendor memory-change tracking (NVPT block,
    /// bytes 3087:3072 of the vendor-specific area); `None` when absent.
    pub(crate) nvpt: Option<TrackCaps>,
}

/// The TP4159 live-migration fields of Identify Controller.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct LmCaps {
    /// Controller Maximum Memory Range Tracking Descriptors (571:570).
    pub(crate) cmmrtd: u16,
    /// NVM Subsystem Maximum Memory Range Tracking Descriptors (573:572).
    pub(crate) nmmrtd: u16,
    /// Minimum Memory Range Tracking Granularity (574).
    pub(crate) minmrtg: u8,
    /// Maximum Memory Range Tracking Granularity (575).
    pub(crate) maxmrtg: u8,
    /// Tracking Attributes (576): bit 0 THMCS, bit 1 TUDCS, bit 2 MRTLL.
    pub(crate) trattr: u8,
    /// Maximum Controller User Data Migration Queues (579:578).
    pub(crate) mcudmq: u16,
    /// Maximum NVM Subsystem User Data Migration Queues (581:580).
    pub(crate) mnsudmq: u16,
    /// Maximum CDQ Memory Ranges (583:582).
    pub(crate) mcmr: u16,
    /// NVM Subsystem Maximum CDQ Memory Ranges (585:584).
    pub(crate) nmcmr: u16,
    /// Maximum Controller Data Queue PRP Count (587:586).
    pub(crate) mcdqpc: u16,
}

impl Default for IdCtrl {
    fn default() -> Self {
        Self {
            vid: 0,
            sn: [0; 20],
            mn: [0; 40],
            cmic: 0,
            mdts: 0,
            cntlid: 0,
            ver: 0,
            oacs: 0,
            nn: 0,
            lm: LmCaps::default(),
            nvpt: None,
        }
    }
}

impl IdCtrl {
    /// Parses an Identify Controller data structure.
    pub(crate) fn parse(b: &[u8]) -> Result<Self, DecodeError> {
        need(b, IDENTIFY_LEN)?;
        let mut sn = [0u8; 20];
        sn.copy_from_slice(&b[4..24]);
        let mut mn = [0u8; 40];
        mn.copy_from_slice(&b[24..64]);
        Ok(Self {
            vid: le16(b, 0),
            sn,
            mn,
            cmic: b[76],
            mdts: b[77],
            cntlid: le16(b, 78),
            ver: le32(b, 80),
            oacs: le16(b, 256),
            nn: le32(b, 516),
            lm: LmCaps {
                cmmrtd: le16(b, 570),
                nmmrtd: le16(b, 572),
                minmrtg: b[574],
                maxmrtg: b[575],
                trattr: b[576],
                mcudmq: le16(b, 578),
                mnsudmq: le16(b, 580),
                mcmr: le16(b, 582),
                nmcmr: le16(b, 584),
                mcdqpc: le16(b, 586),
            },
            nvpt: TrackCaps::parse(&b[NVPT_OFFSET..NVPT_OFFSET + NVPT_LEN]),
        })
    }

    /// Host Managed Live Migration supported (OACS bit 11).
    pub(crate) fn hmlms(&self) -> bool {
        self.oacs & OACS_HMLMS != 0
    }

    /// Maximum data transfer size in bytes for a controller whose
    /// CAP.MPSMIN is `mpsmin` (page size 2^(12 + MPSMIN)); `None` when the
    /// controller reports no limit.
    pub(crate) fn mdts_bytes(&self, mpsmin: u8) -> Option<u64> {
        if self.mdts == 0 {
            return None;
        }
        let shift = 12u32 + u32::from(mpsmin) + u32::from(self.mdts);
        // MDTS is at most 255 by encoding; clamp absurd values to 2^63.
        Some(1u64 << shift.min(63))
    }
}

/// CAP.MPSMIN (bits 51:48 of the CAP register).
pub(crate) fn cap_mpsmin(cap: u64) -> u8 {
    ((cap >> 48) & 0xf) as u8
}

/// Primary Controller Capabilities (CNS 14h), the fields the driver uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct PrimaryCaps {
    /// Controller ID of the primary controller (1:0).
    pub(crate) cntlid: u16,
    /// VQ Flexible Resources Total (35:32).
    pub(crate) vqfrt: u32,
    /// VQ Flexible Resources Assigned to the primary (39:36).
    pub(crate) vqrfa: u32,
    /// VQ Flexible Resources Secondary Maximum (45:44).
    pub(crate) vqfrsm: u16,
    /// VI Flexible Resources Total (67:64).
    pub(crate) vifrt: u32,
    /// VI Flexible Resources Assigned to the primary (71:68).
    pub(crate) virfa: u32,
    /// VI Flexible Resources Secondary Maximum (77:76).
    pub(crate) vifrsm: u16,
}

impl PrimaryCaps {
    /// Parses a Primary Controller Capabilities data structure.
    pub(crate) fn parse(b: &[u8]) -> Result<Self, DecodeError> {
        need(b, IDENTIFY_LEN)?;
        Ok(Self {
            cntlid: le16(b, 0),
            vqfrt: le32(b, 32),
            vqrfa: le32(b, 36),
            vqfrsm: le16(b, 44),
            vifrt: le32(b, 64),
            virfa: le32(b, 68),
            vifrsm: le16(b, 76),
        })
    }
}

/// One Secondary Controller Entry (32 bytes) of CNS 15h.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct SecondaryCtrl {
    /// Secondary Controller Identifier (1:0).
    pub(crate) scid: u16,
    /// Primary Controller Identifier (3:2).
    pub(crate) pcid: u16,
    /// Secondary Controller State (4), bit 0: online.
    pub(crate) scs: u8,
    /// Virtual Function Number (9:8), 1-based; 0 = not a VF.
    pub(crate) vfn: u16,
    /// Number of VQ flexible resources assigned (11:10).
    pub(crate) nvq: u16,
    /// Number of VI flexible resources assigned (13:12).
    pub(crate) nvi: u16,
}

impl SecondaryCtrl {
    /// Online (SCS bit 0).
    pub(crate) fn online(&self) -> bool {
        self.scs & 1 != 0
    }
}

/// Maximum entries in one Secondary Controller List.
pub(crate) const SECONDARY_LIST_MAX: usize = 127;

/// A parsed Secondary Controller List (CNS 15h).
#[derive(Debug, Clone, Copy)]
pub(crate) struct SecondaryList<'a> {
    buf: &'a [u8],
    n: usize,
}

impl<'a> SecondaryList<'a> {
    /// Parses the list; byte 0 is the number of entries (at most 127).
    pub(crate) fn parse(b: &'a [u8]) -> Result<Self, DecodeError> {
        need(b, IDENTIFY_LEN)?;
        let n = b[0] as usize;
        if n > SECONDARY_LIST_MAX {
            return Err(DecodeError::BadCount {
                field: "NUMID",
                value: n as u32,
            });
        }
        Ok(Self { buf: b, n })
    }

    /// Number of entries.
    pub(crate) fn len(&self) -> usize {
        self.n
    }

    /// Entry `i` (0-based), if present.
    pub(crate) fn get(&self, i: usize) -> Option<SecondaryCtrl> {
        if i >= self.n {
            return None;
        }
        let e = &self.buf[32 + i * 32..64 + i * 32];
        Some(SecondaryCtrl {
            scid: le16(e, 0),
            pcid: le16(e, 2),
            scs: e[4],
            vfn: le16(e, 8),
            nvq: le16(e, 10),
            nvi: le16(e, 12),
        })
    }

    /// The entry of the VF with 1-based number `vfn` under primary `pcid`.
    pub(crate) fn find_vf(&self, pcid: u16, vfn: u16) -> Option<SecondaryCtrl> {
        (0..self.n)
            .filter_map(|i| self.get(i))
            .find(|e| e.vfn == vfn && e.pcid == pcid)
    }

    /// The highest SCID in this list (to ask for the next page).
    pub(crate) fn last_scid(&self) -> Option<u16> {
        (0..self.n)
            .filter_map(|i| self.get(i))
            .map(|e| e.scid)
            .max()
    }
}

/// Upper bound on Secondary Controller List pages read in one lookup
/// (65536 controller IDs / 127 entries per page).
pub(crate) const SECONDARY_LIST_MAX_PAGES: usize = 517;

/// Finds the secondary controller of VF `vfn` (1-based) under primary
/// `pcid`. `fetch(cntid, buf)` must fill `buf` with the Secondary Controller
/// List that starts at controller ID `cntid`; the lookup pages on while
/// pages are full, and stops when a device fails to make progress.
pub(crate) fn find_secondary<E>(
    pcid: u16,
    vfn: u16,
    buf: &mut [u8],
    mut fetch: impl FnMut(u16, &mut [u8]) -> Result<(), E>,
    decode_err: impl Fn(DecodeError) -> E,
) -> Result<Option<SecondaryCtrl>, E> {
    let mut cntid = 0u16;
    for _ in 0..SECONDARY_LIST_MAX_PAGES {
        fetch(cntid, buf)?;
        let list = SecondaryList::parse(buf).map_err(&decode_err)?;
        if let Some(e) = list.find_vf(pcid, vfn) {
            return Ok(Some(e));
        }
        if list.len() < SECONDARY_LIST_MAX {
            return Ok(None);
        }
        match list.last_scid().and_then(|l| l.checked_add(1)) {
            Some(next) if next > cntid => cntid = next,
            _ => return Ok(None),
        }
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn page() -> [u8; IDENTIFY_LEN] {
        [0u8; IDENTIFY_LEN]
    }

    #[test]
    fn identify_encoding() {
        let s = identify(cns::SECONDARY_CTRL_LIST, 0x1234, 0);
        assert_eq!(s.dw[0], 0x06);
        assert_eq!(s.dw[10], 0x1234_0015);
        assert_eq!(s.dw[1], 0);
        assert_eq!(s.dw[11], 0);
        let c = identify(cns::CTRL, 0, 0);
        assert_eq!(c.dw[10], 1);
        assert_eq!(identify(cns::CTRL_STATE_FORMATS, 0, 0).dw[10], 0x20);
        assert_eq!(identify(cns::PRIMARY_CTRL_CAPS, 0, 0).dw[10], 0x14);
    }

    #[test]
    fn id_ctrl_fields() {
        let mut b = page();
        b[0..2].copy_from_slice(&0x1b36u16.to_le_bytes());
        b[4..12].copy_from_slice(b"deadbeef");
        b[24..28].copy_from_slice(b"QEMU");
        b[76] = 0x2;
        b[77] = 7;
        b[78..80].copy_from_slice(&0x0102u16.to_le_bytes());
        b[80..84].copy_from_slice(&0x0002_0100u32.to_le_bytes());
        b[256..258].copy_from_slice(&(OACS_HMLMS | OACS_VIRT_MGMT | 1).to_le_bytes());
        b[516..520].copy_from_slice(&256u32.to_le_bytes());
        for (i, v) in b[570..588].iter_mut().enumerate() {
            *v = 0x10 + i as u8;
        }
        // Neighbours of every field are poisoned so off-by-one reads show.
        b[255] = 0xff;
        b[258] = 0xff;
        b[569] = 0xff;
        b[588] = 0xff;
        let id = IdCtrl::parse(&b).unwrap();
        assert_eq!(id.vid, 0x1b36);
        assert_eq!(&id.sn[..8], b"deadbeef");
        assert_eq!(&id.mn[..4], b"QEMU");
        assert_eq!(id.cmic, 2);
        assert_eq!(id.mdts, 7);
        assert_eq!(id.cntlid, 0x0102);
        assert_eq!(id.ver, 0x0002_0100);
        assert_eq!(id.oacs, 0x0881);
        assert!(id.hmlms());
        assert_eq!(id.nn, 256);
        assert_eq!(id.lm.cmmrtd, 0x1110);
        assert_eq!(id.lm.nmmrtd, 0x1312);
        assert_eq!(id.lm.minmrtg, 0x14);
        assert_eq!(id.lm.maxmrtg, 0x15);
        assert_eq!(id.lm.trattr, 0x16);
        // Byte 577 (0x17) is reserved and not read.
        assert_eq!(id.lm.mcudmq, 0x1918);
        assert_eq!(id.lm.mnsudmq, 0x1b1a);
        assert_eq!(id.lm.mcmr, 0x1d1c);
        assert_eq!(id.lm.nmcmr, 0x1f1e);
        assert_eq!(id.lm.mcdqpc, 0x2120);
    }

    #[test]
    fn nvpt_vendor_area() {
        let mut b = page();
        assert_eq!(IdCtrl::parse(&b).unwrap().nvpt, None);
        b[3072..3076].copy_from_slice(b"NVPT");
        b[3076] = 1;
        b[3077] = 16;
        b[3078] = 12;
        b[3079] = 30;
        b[3080..3084].copy_from_slice(&(1u32 << 22).to_le_bytes());
        b[3084..3088].copy_from_slice(&65536u32.to_le_bytes());
        // Neighbours poisoned.
        b[3071] = 0xff;
        b[3088] = 0xff;
        let c = IdCtrl::parse(&b).unwrap().nvpt.unwrap();
        assert_eq!(
            (c.maxr, c.mings, c.maxgs, c.maxpg, c.maxrb),
            (16, 12, 30, 1 << 22, 65536)
        );
        b[3075] = b'X';
        assert_eq!(IdCtrl::parse(&b).unwrap().nvpt, None);
    }

    #[test]
    fn hmlms_bit_only() {
        let mut b = page();
        b[256..258].copy_from_slice(&(!OACS_HMLMS).to_le_bytes());
        assert!(!IdCtrl::parse(&b).unwrap().hmlms());
    }

    #[test]
    fn short_buffers_rejected() {
        let b = [0u8; IDENTIFY_LEN - 1];
        assert_eq!(
            IdCtrl::parse(&b),
            Err(DecodeError::Short {
                need: 4096,
                have: 4095
            })
        );
        assert!(SecondaryList::parse(&b).is_err());
        assert!(PrimaryCaps::parse(&b).is_err());
    }

    #[test]
    fn mdts() {
        let id = IdCtrl {
            mdts: 7,
            ..Default::default()
        };
        assert_eq!(id.mdts_bytes(0), Some(512 * 1024));
        assert_eq!(id.mdts_bytes(1), Some(1024 * 1024));
        assert_eq!(IdCtrl::default().mdts_bytes(0), None);
        let huge = IdCtrl {
            mdts: 255,
            ..Default::default()
        };
        assert_eq!(huge.mdts_bytes(15), Some(1 << 63));
        assert_eq!(cap_mpsmin(0x000f_0000_0000_0000), 0xf);
        assert_eq!(cap_mpsmin(0x0010_0000_0000_0000), 0);
    }

    #[test]
    fn primary_caps() {
        let mut b = page();
        b[0..2].copy_from_slice(&0x41u16.to_le_bytes());
        b[32..36].copy_from_slice(&8u32.to_le_bytes());
        b[36..40].copy_from_slice(&2u32.to_le_bytes());
        b[44..46].copy_from_slice(&4u16.to_le_bytes());
        b[64..68].copy_from_slice(&4u32.to_le_bytes());
        b[68..72].copy_from_slice(&1u32.to_le_bytes());
        b[76..78].copy_from_slice(&2u16.to_le_bytes());
        let p = PrimaryCaps::parse(&b).unwrap();
        assert_eq!(
            p,
            PrimaryCaps {
                cntlid: 0x41,
                vqfrt: 8,
                vqrfa: 2,
                vqfrsm: 4,
                vifrt: 4,
                virfa: 1,
                vifrsm: 2
            }
        );
    }

    #[allow(clippy::too_many_arguments)]
    fn entry(b: &mut [u8], i: usize, scid: u16, pcid: u16, scs: u8, vfn: u16, nvq: u16, nvi: u16) {
        let e = &mut b[32 + i * 32..64 + i * 32];
        e[0..2].copy_from_slice(&scid.to_le_bytes());
        e[2..4].copy_from_slice(&pcid.to_le_bytes());
        e[4] = scs;
        e[8..10].copy_from_slice(&vfn.to_le_bytes());
        e[10..12].copy_from_slice(&nvq.to_le_bytes());
        e[12..14].copy_from_slice(&nvi.to_le_bytes());
    }

    #[test]
    fn secondary_list() {
        let mut b = page();
        b[0] = 3;
        entry(&mut b, 0, 1, 0, 1, 1, 2, 1);
        entry(&mut b, 1, 2, 0, 0, 2, 0, 0);
        entry(&mut b, 2, 9, 5, 1, 1, 2, 1); // VF 1 of another primary
        entry(&mut b, 3, 7, 0, 1, 3, 2, 1); // beyond NUMID: must be ignored
        let l = SecondaryList::parse(&b).unwrap();
        assert_eq!(l.len(), 3);
        let e = l.find_vf(0, 1).unwrap();
        assert_eq!((e.scid, e.pcid, e.vfn, e.nvq, e.nvi), (1, 0, 1, 2, 1));
        assert!(e.online());
        assert!(!l.find_vf(0, 2).unwrap().online());
        assert_eq!(l.find_vf(5, 1).unwrap().scid, 9);
        assert!(l.find_vf(0, 3).is_none());
        assert!(l.get(3).is_none());
        assert_eq!(l.last_scid(), Some(9));
    }

    #[test]
    fn secondary_list_bounds() {
        let mut b = page();
        b[0] = 127;
        entry(&mut b, 126, 0x7e, 0, 1, 127, 2, 1); // last entry ends at byte 4095
        let l = SecondaryList::parse(&b).unwrap();
        assert_eq!(l.get(126).unwrap().vfn, 127);
        b[0] = 128;
        assert_eq!(
            SecondaryList::parse(&b).unwrap_err(),
            DecodeError::BadCount {
                field: "NUMID",
                value: 128
            }
        );
        b[0] = 0;
        assert_eq!(SecondaryList::parse(&b).unwrap().last_scid(), None);
    }

    /// A fake controller with `n` secondaries (SCID i+1, VF i+1 of primary 0)
    /// that serves the list from `cntid` in pages of 127.
    fn fake(n: u16) -> impl FnMut(u16, &mut [u8]) -> Result<(), ()> {
        move |cntid, b: &mut [u8]| {
            b.fill(0);
            let ids: Vec<u16> = (1..=n).filter(|&s| s >= cntid).take(127).collect();
            b[0] = ids.len() as u8;
            for (i, s) in ids.iter().enumerate() {
                entry(b, i, *s, 0, 1, *s, 2, 1);
            }
            Ok(())
        }
    }

    #[test]
    fn secondary_lookup_pages() {
        let mut b = page();
        let mut calls = 0;
        let mut f = fake(300);
        let r = find_secondary(
            0,
            260,
            &mut b,
            |c, b| {
                calls += 1;
                f(c, b)
            },
            |_| (),
        )
        .unwrap();
        assert_eq!(r.unwrap().scid, 260);
        assert_eq!(calls, 3);
        assert_eq!(
            find_secondary(0, 2, &mut b, fake(300), |_| ())
                .unwrap()
                .unwrap()
                .scid,
            2
        );
        assert!(find_secondary(0, 301, &mut b, fake(300), |_| ())
            .unwrap()
            .is_none());
        assert!(find_secondary(1, 2, &mut b, fake(4), |_| ())
            .unwrap()
            .is_none());
    }

    #[test]
    fn secondary_lookup_stuck_device() {
        // A device that always returns the same full page must not loop.
        let mut b = page();
        let mut calls = 0;
        let r = find_secondary(
            0,
            999,
            &mut b,
            |_, b: &mut [u8]| {
                calls += 1;
                b.fill(0);
                b[0] = 127;
                for i in 0..127 {
                    entry(b, i, 0, 0, 1, 0, 0, 0);
                }
                Ok::<(), ()>(())
            },
            |_| (),
        );
        assert_eq!(r, Ok(None));
        assert!(calls <= 2);
        // Errors from the transport and from decoding pass through.
        assert_eq!(find_secondary(0, 1, &mut b, |_, _| Err(7), |_| 8), Err(7));
        assert_eq!(
            find_secondary(
                0,
                1,
                &mut b,
                |_, b: &mut [u8]| {
                    b[0] = 200;
                    Ok(())
                },
                |_| 8
            ),
            Err(8)
        );
    }
}
