// SPDX-License-Identifier: GPL-2.0

//! The migration stream: what the source driver serves through the VFIO
//! migration file and the destination validates before anything touches
//! its device. Format (all little endian; `Documentation/migration-stream.rst`):
//!
//! ```text
//! header   32 B  magic "NVMEVFMS", version, header length, flags,
//!                total length, section count, reserved (0)
//! section  8 B header (type, flags, payload length) + payload, padded to 8
//! ...
//! end      section of type END whose 8-byte payload is the CRC-32C of
//!          every byte before that payload, then 4 reserved zero bytes
//! ```
//!
//! A section whose flags have [`SEC_CRITICAL`] must be understood; others
//! may be skipped by an older reader. Every length and offset is checked
//! with overflow-safe arithmetic against the buffer and [`MAX_STREAM_LEN`].

use super::{le16, le32, le64, need};

/// Stream magic.
pub(crate) const MAGIC: [u8; 8] = *b"NVMEVFMS";
/// Stream format version this code writes and reads.
pub(crate) const VERSION: u16 = 1;
/// Header length.
pub(crate) const HDR_LEN: usize = 32;
/// Section header length.
pub(crate) const SEC_HDR_LEN: usize = 8;
/// Hard bound on a stream (the largest TP4159 state, 65535 SQs and CQs, is
/// about 3 MiB; vendor state is small).
pub(crate) const MAX_STREAM_LEN: u64 = 8 << 20;
/// Section flag: a reader that does not know the type must refuse.
pub(crate) const SEC_CRITICAL: u16 = 1;
/// Header flags this version understands (none defined yet).
pub(crate) const KNOWN_FLAGS: u32 = 0;

/// Section types.
pub(crate) mod sec {
    /// The source's identity and needs ([`super::Identity`]).
    pub(crate) const IDENTITY: u16 = 1;
    /// TP4159 Controller State (header + NVMe Controller State v0).
    pub(crate) const NVME_STATE: u16 = 2;
    /// Vendor-specific state: 16-byte UUID then the data.
    pub(crate) const VENDOR_STATE: u16 = 3;
    /// End of stream and checksum.
    pub(crate) const END: u16 = 0xffff;
}

/// Why a stream was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum StreamError {
    /// Shorter than its structure says.
    Truncated,
    /// Longer than [`MAX_STREAM_LEN`] or than its header says.
    TooLong,
    /// Wrong magic.
    BadMagic,
    /// Unsupported format version.
    BadVersion(u16),
    /// Header length or reserved fields wrong.
    BadHeader,
    /// Header flags this reader does not know.
    UnknownFlags(u32),
    /// A section runs past the end or has a bad length.
    BadSection(u16),
    /// A critical section of unknown type.
    UnknownCritical(u16),
    /// A section that may appear once appears twice.
    Duplicate(u16),
    /// A required section is missing.
    Missing(u16),
    /// The END section is missing or not last.
    NoEnd,
    /// Checksum mismatch.
    BadChecksum {
        /// Checksum in the stream.
        stored: u32,
        /// Checksum computed.
        computed: u32,
    },
    /// The section count does not match.
    BadCount,
}

/// CRC-32C (Castagnoli) table, built at compile time.
const CRC32C_TABLE: [u32; 256] = {
    let mut t = [0u32; 256];
    let mut i = 0;
    while i < 256 {
        let mut c = i as u32;
        let mut k = 0;
        while k < 8 {
            c = if c & 1 != 0 {
                0x82f6_3b78 ^ (c >> 1)
            } else {
                c >> 1
            };
            k += 1;
        }
        t[i] = c;
        i += 1;
    }
    t
};

/// CRC-32C of `data`, continuing from `crc` (start with 0).
pub(crate) fn crc32c(crc: u32, data: &[u8]) -> u32 {
    let mut c = !crc;
    for &b in data {
        c = CRC32C_TABLE[((c ^ u32::from(b)) & 0xff) as usize] ^ (c >> 8);
    }
    !c
}

/// Rounds up to a multiple of 8, `None` on overflow.
fn pad8(n: usize) -> Option<usize> {
    n.checked_add(7).map(|v| v & !7)
}

/// The source's identity and what it needs from a destination.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct Identity {
    /// PCI vendor and device ID of the source VF.
    pub(crate) vendor: u16,
    /// PCI device ID.
    pub(crate) device: u16,
    /// Subsystem vendor ID.
    pub(crate) subvendor: u16,
    /// Subsystem device ID.
    pub(crate) subdevice: u16,
    /// The source VF's secondary controller ID (informational).
    pub(crate) scid: u16,
    /// VQ resources in use (admin + I/O queues): the destination needs at
    /// least this many.
    pub(crate) nvq: u16,
    /// VI resources in use.
    pub(crate) nvi: u16,
    /// Highest I/O queue ID in use (0: none).
    pub(crate) max_qid: u16,
    /// Highest interrupt vector in use + 1 (0: none).
    pub(crate) nvectors: u16,
    /// Reserved.
    pub(crate) rsvd: u16,
    /// MDTS of the source PF in bytes (0: no limit).
    pub(crate) mdts: u64,
    /// Vendor state UUID expected by the source (all zero: none).
    pub(crate) vendor_uuid: [u8; 16],
}

/// Encoded length of [`Identity`].
pub(crate) const IDENTITY_LEN: usize = 48;

impl Identity {
    /// Encodes into 48 bytes.
    pub(crate) fn encode(&self) -> [u8; IDENTITY_LEN] {
        let mut b = [0u8; IDENTITY_LEN];
        let f = [
            self.vendor,
            self.device,
            self.subvendor,
            self.subdevice,
            self.scid,
            self.nvq,
            self.nvi,
            self.max_qid,
            self.nvectors,
            self.rsvd,
        ];
        for (i, v) in f.iter().enumerate() {
            b[i * 2..i * 2 + 2].copy_from_slice(&v.to_le_bytes());
        }
        b[24..32].copy_from_slice(&self.mdts.to_le_bytes());
        b[32..48].copy_from_slice(&self.vendor_uuid);
        b
    }

    /// Decodes 48 bytes (bytes 20..24 must be zero).
    pub(crate) fn parse(b: &[u8]) -> Result<Self, StreamError> {
        if b.len() != IDENTITY_LEN {
            return Err(StreamError::BadSection(sec::IDENTITY));
        }
        if le16(b, 18) != 0 || le32(b, 20) != 0 {
            return Err(StreamError::BadSection(sec::IDENTITY));
        }
        let mut u = [0u8; 16];
        u.copy_from_slice(&b[32..48]);
        Ok(Self {
            vendor: le16(b, 0),
            device: le16(b, 2),
            subvendor: le16(b, 4),
            subdevice: le16(b, 6),
            scid: le16(b, 8),
            nvq: le16(b, 10),
            nvi: le16(b, 12),
            max_qid: le16(b, 14),
            nvectors: le16(b, 16),
            rsvd: 0,
            mdts: le64(b, 24),
            vendor_uuid: u,
        })
    }
}

/// Writes a stream into a caller-provided buffer.
pub(crate) struct Writer<'a> {
    buf: &'a mut [u8],
    pos: usize,
    nsec: u32,
}

impl<'a> Writer<'a> {
    /// Starts a stream in `buf`; `None` if `buf` cannot hold the header.
    pub(crate) fn new(buf: &'a mut [u8]) -> Option<Self> {
        if buf.len() < HDR_LEN {
            return None;
        }
        buf[..HDR_LEN].fill(0);
        Some(Self {
            buf,
            pos: HDR_LEN,
            nsec: 0,
        })
    }

    /// Bytes a stream needs for sections of the given payload lengths.
    pub(crate) fn size_for(payloads: &[usize]) -> Option<usize> {
        let mut n = HDR_LEN;
        for &p in payloads.iter().chain([8usize].iter()) {
            n = n.checked_add(SEC_HDR_LEN)?.checked_add(pad8(p)?)?;
        }
        Some(n)
    }

    /// Appends a section made of the concatenation of `parts`.
    pub(crate) fn section(&mut self, ty: u16, flags: u16, parts: &[&[u8]]) -> Option<()> {
        let len = parts
            .iter()
            .try_fold(0usize, |a, p| a.checked_add(p.len()))?;
        let end = self.pos.checked_add(SEC_HDR_LEN)?.checked_add(pad8(len)?)?;
        if end > self.buf.len() || len > u32::MAX as usize {
            return None;
        }
        let h = &mut self.buf[self.pos..self.pos + SEC_HDR_LEN];
        h[0..2].copy_from_slice(&ty.to_le_bytes());
        h[2..4].copy_from_slice(&flags.to_le_bytes());
        h[4..8].copy_from_slice(&(len as u32).to_le_bytes());
        let mut o = self.pos + SEC_HDR_LEN;
        for p in parts {
            self.buf[o..o + p.len()].copy_from_slice(p);
            o += p.len();
        }
        self.buf[o..end].fill(0);
        self.pos = end;
        self.nsec += 1;
        Some(())
    }

    /// Writes the END section and the header; returns the stream length.
    pub(crate) fn finish(mut self, flags: u32) -> Option<usize> {
        let total = self.pos.checked_add(SEC_HDR_LEN + 8)?;
        if total > self.buf.len() || total as u64 > MAX_STREAM_LEN {
            return None;
        }
        self.nsec += 1;
        let b = &mut *self.buf;
        b[0..8].copy_from_slice(&MAGIC);
        b[8..10].copy_from_slice(&VERSION.to_le_bytes());
        b[10..12].copy_from_slice(&(HDR_LEN as u16).to_le_bytes());
        b[12..16].copy_from_slice(&flags.to_le_bytes());
        b[16..24].copy_from_slice(&(total as u64).to_le_bytes());
        b[24..28].copy_from_slice(&self.nsec.to_le_bytes());
        b[28..32].fill(0);
        let p = self.pos;
        b[p..p + 2].copy_from_slice(&sec::END.to_le_bytes());
        b[p + 2..p + 4].copy_from_slice(&SEC_CRITICAL.to_le_bytes());
        b[p + 4..p + 8].copy_from_slice(&8u32.to_le_bytes());
        let crc = crc32c(0, &b[..p + SEC_HDR_LEN]);
        b[p + 8..p + 12].copy_from_slice(&crc.to_le_bytes());
        b[p + 12..p + 16].fill(0);
        Some(total)
    }
}

/// A validated stream: every section located and checked.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Stream<'a> {
    /// Header flags.
    pub(crate) flags: u32,
    /// The source identity.
    pub(crate) identity: Identity,
    /// The TP4159 Controller State, if present.
    pub(crate) nvme_state: Option<&'a [u8]>,
    /// Vendor UUID and vendor state, if present.
    pub(crate) vendor: Option<([u8; 16], &'a [u8])>,
}

/// Reads only the header: returns the total length the stream declares
/// (so a reader can tell how much is still to come), after checking magic,
/// version and bounds.
pub(crate) fn declared_len(b: &[u8]) -> Result<u64, StreamError> {
    need(b, HDR_LEN).map_err(|_| StreamError::Truncated)?;
    if b[0..8] != MAGIC {
        return Err(StreamError::BadMagic);
    }
    let ver = le16(b, 8);
    if ver != VERSION {
        return Err(StreamError::BadVersion(ver));
    }
    if le16(b, 10) as usize != HDR_LEN || le32(b, 28) != 0 {
        return Err(StreamError::BadHeader);
    }
    let total = le64(b, 16);
    if total > MAX_STREAM_LEN {
        return Err(StreamError::TooLong);
    }
    if total < (HDR_LEN + SEC_HDR_LEN + 8) as u64 {
        return Err(StreamError::BadHeader);
    }
    Ok(total)
}

/// Validates a complete stream.
pub(crate) fn parse(b: &[u8]) -> Result<Stream<'_>, StreamError> {
    let total = declared_len(b)? as usize;
    if b.len() < total {
        return Err(StreamError::Truncated);
    }
    if b.len() > total {
        return Err(StreamError::TooLong);
    }
    let flags = le32(b, 12);
    if flags & !KNOWN_FLAGS != 0 {
        return Err(StreamError::UnknownFlags(flags & !KNOWN_FLAGS));
    }
    let nsec = le32(b, 24);
    let mut identity = None;
    let mut nvme_state = None;
    let mut vendor = None;
    let mut pos = HDR_LEN;
    let mut seen = 0u32;
    loop {
        let hdr_end = pos.checked_add(SEC_HDR_LEN).ok_or(StreamError::Truncated)?;
        if hdr_end > total {
            return Err(StreamError::NoEnd);
        }
        let ty = le16(b, pos);
        let sflags = le16(b, pos + 2);
        let len = le32(b, pos + 4) as usize;
        let end = pad8(len)
            .and_then(|l| hdr_end.checked_add(l))
            .ok_or(StreamError::BadSection(ty))?;
        if end > total {
            return Err(StreamError::BadSection(ty));
        }
        let payload = &b[hdr_end..hdr_end + len];
        seen += 1;
        match ty {
            sec::END => {
                if len != 8 || end != total {
                    return Err(StreamError::NoEnd);
                }
                let stored = le32(payload, 0);
                let computed = crc32c(0, &b[..hdr_end]);
                if stored != computed {
                    return Err(StreamError::BadChecksum { stored, computed });
                }
                if le32(payload, 4) != 0 {
                    return Err(StreamError::BadSection(ty));
                }
                break;
            }
            sec::IDENTITY => {
                if identity.is_some() {
                    return Err(StreamError::Duplicate(ty));
                }
                identity = Some(Identity::parse(payload)?);
            }
            sec::NVME_STATE => {
                if nvme_state.is_some() {
                    return Err(StreamError::Duplicate(ty));
                }
                nvme_state = Some(payload);
            }
            sec::VENDOR_STATE => {
                if vendor.is_some() {
                    return Err(StreamError::Duplicate(ty));
                }
                if len < 16 {
                    return Err(StreamError::BadSection(ty));
                }
                let mut u = [0u8; 16];
                u.copy_from_slice(&payload[..16]);
                vendor = Some((u, &payload[16..]));
            }
            _ if sflags & SEC_CRITICAL != 0 => return Err(StreamError::UnknownCritical(ty)),
            _ => {}
        }
        // Padding must be zero, so no two encodings of one stream differ.
        if b[hdr_end + len..end].iter().any(|&x| x != 0) {
            return Err(StreamError::BadSection(ty));
        }
        pos = end;
    }
    if seen != nsec {
        return Err(StreamError::BadCount);
    }
    Ok(Stream {
        flags,
        identity: identity.ok_or(StreamError::Missing(sec::IDENTITY))?,
        nvme_state,
        vendor,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ident() -> Identity {
        Identity {
            vendor: 0x1b36,
            device: 0x0010,
            subvendor: 0x1af4,
            subdevice: 0x1100,
            scid: 1,
            nvq: 2,
            nvi: 1,
            max_qid: 1,
            nvectors: 1,
            rsvd: 0,
            mdts: 512 * 1024,
            vendor_uuid: [0x5a; 16],
        }
    }

    fn build(state: &[u8], vendor: Option<&[u8]>) -> Vec<u8> {
        let id = ident().encode();
        let mut lens = vec![IDENTITY_LEN, state.len()];
        if let Some(v) = vendor {
            lens.push(16 + v.len());
        }
        let n = Writer::size_for(&lens).unwrap();
        let mut buf = vec![0u8; n];
        let mut w = Writer::new(&mut buf).unwrap();
        w.section(sec::IDENTITY, SEC_CRITICAL, &[&id]).unwrap();
        w.section(sec::NVME_STATE, SEC_CRITICAL, &[state]).unwrap();
        if let Some(v) = vendor {
            w.section(sec::VENDOR_STATE, SEC_CRITICAL, &[&[0x5a; 16], v])
                .unwrap();
        }
        assert_eq!(w.finish(0), Some(n));
        buf
    }

    #[test]
    fn crc32c_known_value() {
        assert_eq!(crc32c(0, b"123456789"), 0xe306_9283);
        assert_eq!(crc32c(crc32c(0, b"1234"), b"56789"), 0xe306_9283);
        assert_eq!(crc32c(0, b""), 0);
    }

    #[test]
    fn round_trip() {
        let state: Vec<u8> = (0..104u8).collect();
        let b = build(&state, Some(b"vendor-state"));
        let s = parse(&b).unwrap();
        assert_eq!(s.identity, ident());
        assert_eq!(s.nvme_state, Some(&state[..]));
        let (u, v) = s.vendor.unwrap();
        assert_eq!(u, [0x5a; 16]);
        assert_eq!(v, b"vendor-state");
        assert_eq!(declared_len(&b).unwrap(), b.len() as u64);
        // Odd payload lengths are padded and still round-trip.
        let b = build(&state[..13], None);
        assert_eq!(b.len() % 8, 0);
        let s = parse(&b).unwrap();
        assert_eq!(s.nvme_state.unwrap().len(), 13);
        assert!(s.vendor.is_none());
    }

    #[test]
    fn layout() {
        let b = build(&[1, 2, 3, 4], None);
        assert_eq!(&b[0..8], b"NVMEVFMS");
        assert_eq!(le16(&b, 8), 1);
        assert_eq!(le16(&b, 10), 32);
        assert_eq!(le64(&b, 16), b.len() as u64);
        assert_eq!(le32(&b, 24), 3);
        assert_eq!(le16(&b, 32), sec::IDENTITY);
        assert_eq!(le32(&b, 36), 48);
        assert_eq!(le16(&b, 32 + 56), sec::NVME_STATE);
        let end = b.len() - 16;
        assert_eq!(le16(&b, end), sec::END);
        assert_eq!(le32(&b, end + 8), crc32c(0, &b[..end + 8]));
    }

    #[test]
    fn truncated_everywhere() {
        let b = build(&[7u8; 64], Some(b"v"));
        for n in 0..b.len() {
            assert!(parse(&b[..n]).is_err(), "truncated at {}", n);
        }
        let mut ext = b.clone();
        ext.extend_from_slice(&[0; 8]);
        assert_eq!(parse(&ext).unwrap_err(), StreamError::TooLong);
    }

    #[test]
    fn every_bit_flip_refused() {
        let b = build(&[9u8; 24], None);
        for i in 0..b.len() {
            for bit in 0..8 {
                let mut c = b.clone();
                c[i] ^= 1 << bit;
                assert!(parse(&c).is_err(), "flip byte {} bit {} accepted", i, bit);
            }
        }
    }

    #[test]
    fn header_errors() {
        let b = build(&[0u8; 8], None);
        let mut c = b.clone();
        c[0] = b'X';
        assert_eq!(parse(&c).unwrap_err(), StreamError::BadMagic);
        let mut c = b.clone();
        c[8] = 2;
        assert_eq!(parse(&c).unwrap_err(), StreamError::BadVersion(2));
        let mut c = b.clone();
        c[16..24].copy_from_slice(&(MAX_STREAM_LEN + 1).to_le_bytes());
        assert_eq!(declared_len(&c).unwrap_err(), StreamError::TooLong);
        let mut c = b.clone();
        c[16..24].copy_from_slice(&u64::MAX.to_le_bytes());
        assert_eq!(parse(&c).unwrap_err(), StreamError::TooLong);
        let mut c = b.clone();
        c[28] = 1;
        assert_eq!(parse(&c).unwrap_err(), StreamError::BadHeader);
    }

    /// Rewrites the checksum so a test reaches the check it targets.
    fn reseal(c: &mut [u8]) {
        let end = c.len() - 16;
        let crc = crc32c(0, &c[..end + 8]);
        c[end + 8..end + 12].copy_from_slice(&crc.to_le_bytes());
    }

    #[test]
    fn lying_section_lengths() {
        let b = build(&[0u8; 16], None);
        // Identity section length claims more than the stream.
        let mut c = b.clone();
        c[36..40].copy_from_slice(&u32::MAX.to_le_bytes());
        reseal(&mut c);
        assert_eq!(
            parse(&c).unwrap_err(),
            StreamError::BadSection(sec::IDENTITY)
        );
        // Identity of the wrong size.
        let mut c = b.clone();
        c[36..40].copy_from_slice(&40u32.to_le_bytes());
        reseal(&mut c);
        assert!(parse(&c).is_err());
        // Section count off by one.
        let mut c = b.clone();
        c[24] = 4;
        reseal(&mut c);
        assert_eq!(parse(&c).unwrap_err(), StreamError::BadCount);
        // Unknown flags.
        let mut c = b.clone();
        c[12] = 1;
        reseal(&mut c);
        assert_eq!(parse(&c).unwrap_err(), StreamError::UnknownFlags(1));
    }

    #[test]
    fn unknown_and_duplicate_sections() {
        let id = ident().encode();
        let mk = |extra: &[(u16, u16)]| {
            let mut buf = vec![0u8; 512];
            let mut w = Writer::new(&mut buf).unwrap();
            w.section(sec::IDENTITY, SEC_CRITICAL, &[&id]).unwrap();
            for &(t, f) in extra {
                w.section(t, f, &[&[1, 2, 3]]).unwrap();
            }
            let n = w.finish(0).unwrap();
            buf.truncate(n);
            buf
        };
        assert!(parse(&mk(&[(0x99, 0)])).is_ok());
        assert_eq!(
            parse(&mk(&[(0x99, SEC_CRITICAL)])).unwrap_err(),
            StreamError::UnknownCritical(0x99)
        );
        assert_eq!(
            parse(&mk(&[(sec::NVME_STATE, 1), (sec::NVME_STATE, 1)])).unwrap_err(),
            StreamError::Duplicate(sec::NVME_STATE)
        );
        assert_eq!(
            parse(&mk(&[(sec::VENDOR_STATE, 1)])).unwrap_err(),
            StreamError::BadSection(sec::VENDOR_STATE)
        );
        // No identity at all.
        let mut buf = vec![0u8; 128];
        let w = Writer::new(&mut buf).unwrap();
        let n = w.finish(0).unwrap();
        assert_eq!(
            parse(&buf[..n]).unwrap_err(),
            StreamError::Missing(sec::IDENTITY)
        );
    }

    #[test]
    fn writer_bounds() {
        let mut small = [0u8; 31];
        assert!(Writer::new(&mut small).is_none());
        let mut buf = [0u8; 64];
        let mut w = Writer::new(&mut buf).unwrap();
        assert!(w.section(1, 0, &[&[0u8; 40]]).is_none());
        assert!(w.section(1, 0, &[&[0u8; 8]]).is_some());
        assert!(w.finish(0).is_some());
        assert_eq!(Writer::size_for(&[48, 104]), Some(32 + 56 + 112 + 16));
        assert_eq!(Writer::size_for(&[usize::MAX]), None);
    }
}
