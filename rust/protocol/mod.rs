// SPDX-License-Identifier: GPL-2.0

//! NVMe protocol encoders and decoders (pure, `core` only).
//!
//! This module knows nothing of the kernel: it turns typed requests into
//! 64-byte submission queue entries and parses the data structures the
//! controller returns, checking every bound. The kernel crate and the host
//! test crate (`tools/nvp-proto`) compile the same files, so `cargo test`
//! checks every field position without a VM.
//!
//! Field positions follow the NVMe Base specification and, for Host Managed
//! Live Migration (TP4159), `shared/docs/tp4159.md`.
//!
//! Locking: none; every item is plain data.

// A protocol library: not every encoder or field is used by every build of
// the driver, and the host crate uses the rest.
#![allow(dead_code)]

pub(crate) mod dest;
pub(crate) mod dirty;
pub(crate) mod identify;
pub(crate) mod sqe;
pub(crate) mod status;
pub(crate) mod stream;
pub(crate) mod tp4159;

/// Why a buffer from the controller (or a stream) could not be decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum DecodeError {
    /// The buffer is shorter than the structure needs.
    Short {
        /// Bytes needed.
        need: usize,
        /// Bytes present.
        have: usize,
    },
    /// A count or length field is out of its allowed range.
    BadCount {
        /// The field.
        field: &'static str,
        /// Its value.
        value: u32,
    },
}

/// Reads a little-endian `u16` at `off`; the caller has checked the length.
pub(crate) fn le16(b: &[u8], off: usize) -> u16 {
    u16::from_le_bytes([b[off], b[off + 1]])
}

/// Reads a little-endian `u32` at `off`; the caller has checked the length.
pub(crate) fn le32(b: &[u8], off: usize) -> u32 {
    u32::from_le_bytes([b[off], b[off + 1], b[off + 2], b[off + 3]])
}

/// Reads a little-endian `u64` at `off`; the caller has checked the length.
pub(crate) fn le64(b: &[u8], off: usize) -> u64 {
    u64::from(le32(b, off)) | (u64::from(le32(b, off + 4)) << 32)
}

/// Checks that `b` holds at least `need` bytes.
pub(crate) fn need(b: &[u8], need: usize) -> Result<(), DecodeError> {
    if b.len() < need {
        Err(DecodeError::Short {
            need,
            have: b.len(),
        })
    } else {
        Ok(())
    }
}

/// UUID of the vendor-specific controller state format of the project's
/// TP4159 device model (admin queue, registers, features, AERs; see
/// `Documentation/device-model.rst`), 21b9d27c-da25-4545-bf2a-6fad2825565e,
/// in the byte order it appears in Identify CNS 20h.
pub(crate) const VENDOR_STATE_UUID: [u8; 16] = [
    0x21, 0xb9, 0xd2, 0x7c, 0xda, 0x25, 0x45, 0x45, 0xbf, 0x2a, 0x6f, 0xad, 0x28, 0x25, 0x56, 0x5e,
];
