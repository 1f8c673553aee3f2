// SPDX-License-Identifier: GPL-2.0

//! TP4159 operations on a migratable (secondary) controller, issued to its
//! migration controller: Suspend, Resume, Get and Set Controller State,
//! Supported Controller State Formats. Transfers larger than the PF's MDTS
//! are split with Offset (Get) and SEQIND/Offset (Set).
//!
//! Locking: each command takes the PF's gate for its own duration
//! ([`PfController::admin`]); a multi-command transfer is serialised by the
//! caller's per-VF state mutex, and the device model (like a real
//! controller) tracks the sequence per migratable controller.

use kernel::{
    alloc::KVVec,
    prelude::*, //
};

use crate::{
    pf::{
        CmdError,
        PfController, //
    },
    protocol::{
        stream::MAX_STREAM_LEN,
        tp4159::{
            self,
            SeqInd,
            StateHeader,
            SuspendType, //
        },
    },
};

/// How long a Suspend may take: the controller drains fetched commands
/// first (TP4159 leaves the bound to the host).
pub(crate) const SUSPEND_TIMEOUT_MS: u32 = 30_000;

/// The state formats the driver uses on one PF.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Formats {
    /// CSVI selecting NVMe Controller State version 0, if supported.
    pub(crate) csvi_v0: Option<u8>,
    /// CSUUIDI selecting our vendor state, if supported.
    pub(crate) csuuidi: Option<u8>,
}

/// The formats the driver uses on this PF, read from Identify CNS 20h at
/// discovery.
pub(crate) fn formats(pf: &PfController) -> Formats {
    let c = pf.caps();
    Formats {
        csvi_v0: c.csvi_v0,
        csuuidi: c.csuuidi,
    }
}

/// Migration Send Suspend (STYPE 1) of controller `cntlid`.
pub(crate) fn suspend(pf: &PfController, cntlid: u16) -> Result<(), CmdError> {
    pf.admin(
        &tp4159::suspend(cntlid, SuspendType::Suspend, false),
        None,
        SUSPEND_TIMEOUT_MS,
    )
    .map(|_| ())
}

/// Migration Send Resume of controller `cntlid`.
pub(crate) fn resume(pf: &PfController, cntlid: u16) -> Result<(), CmdError> {
    pf.admin(&tp4159::resume(cntlid), None, 0).map(|_| ())
}

/// Reads the 48-byte Controller State header of `cntlid`; returns it, the
/// total length it declares (bounded by the stream limit) and CQE DW0.
fn state_header(
    pf: &PfController,
    cntlid: u16,
    csvi: u8,
    csuuidi: u8,
) -> Result<([u8; tp4159::STATE_HDR_LEN], usize, u32), CmdError> {
    let mut hdr = [0u8; tp4159::STATE_HDR_LEN];
    let sqe = tp4159::get_state(cntlid, csvi, csuuidi, 0, hdr.len() as u32).ok_or(EINVAL)?;
    let dw0 = pf.admin(&sqe, Some(&mut hdr), 0)?;
    let h = StateHeader::parse(&hdr).map_err(|_| EPROTO)?;
    let total = h.total_len().ok_or(EPROTO)?;
    if total > MAX_STREAM_LEN {
        return Err(EFBIG.into());
    }
    Ok((hdr, total as usize, dw0))
}

/// The length of the Controller State data structure of `cntlid` now.
pub(crate) fn state_len(
    pf: &PfController,
    cntlid: u16,
    csvi: u8,
    csuuidi: u8,
) -> Result<usize, CmdError> {
    state_header(pf, cntlid, csvi, csuuidi).map(|(_, total, _)| total)
}

/// Migration Receive Get Controller State: the whole Controller State data
/// structure of `cntlid` (header first, then the rest in MDTS-sized windows).
/// Returns the bytes and whether the controller reported itself suspended
/// (CQE DW0 CSUP or the header's CSATTR).
pub(crate) fn get_state(
    pf: &PfController,
    cntlid: u16,
    csvi: u8,
    csuuidi: u8,
) -> Result<(KVVec<u8>, bool), CmdError> {
    let (hdr, total, dw0) = state_header(pf, cntlid, csvi, csuuidi)?;
    let h = StateHeader::parse(&hdr).map_err(|_| EPROTO)?;
    let mut out = KVVec::from_elem(0u8, total, GFP_KERNEL).map_err(Error::from)?;
    out[..hdr.len()].copy_from_slice(&hdr);
    let chunk = (pf.max_xfer() & !3).max(4);
    let mut off = hdr.len();
    while off < total {
        let n = chunk.min(total - off);
        let sqe = tp4159::get_state(cntlid, csvi, csuuidi, off as u64, n as u32).ok_or(EINVAL)?;
        pf.admin(&sqe, Some(&mut out[off..off + n]), 0)?;
        off += n;
    }
    // The header must not change between the windows.
    if out[..hdr.len()] != hdr {
        return Err(EPROTO.into());
    }
    Ok((out, dw0 & tp4159::GET_STATE_DW0_CSUP != 0 || h.suspended()))
}

/// Migration Send Set Controller State of `cntlid` from `data` (a whole
/// Controller State data structure), in MDTS-sized pieces with SEQIND.
pub(crate) fn set_state(
    pf: &PfController,
    cntlid: u16,
    csvi: u8,
    csuuidi: u8,
    data: &mut [u8],
) -> Result<(), CmdError> {
    if data.is_empty() || data.len() % 4 != 0 {
        return Err(EINVAL.into());
    }
    let chunk = (pf.max_xfer() & !3).max(4);
    let n = data.len().div_ceil(chunk);
    for i in 0..n {
        let off = i * chunk;
        let len = chunk.min(data.len() - off);
        let sqe = tp4159::set_state(
            cntlid,
            SeqInd::of(i, n),
            csvi,
            csuuidi,
            off as u64,
            len as u32,
        )
        .ok_or(EINVAL)?;
        pf.admin(&sqe, Some(&mut data[off..off + len]), 0)?;
    }
    Ok(())
}
