// SPDX-License-Identifier: GPL-2.0

//! What a destination VF checks in a migration stream before anything
//! touches its device. Pure: the driver's RESUMING → STOP arc and the host
//! fuzz targets (`tools/fuzz/`) run this same code.

use super::{
    stream::{
        self,
        StreamError, //
    },
    tp4159::{
        NvmeState,
        StateHeader,
        STATE_HDR_LEN, //
    },
    VENDOR_STATE_UUID,
};

/// What the destination offers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Dest {
    /// PCI vendor, device, subsystem vendor and subsystem device of the VF.
    pub(crate) ids: (u16, u16, u16, u16),
    /// VQ resources assigned to the VF (admin + I/O queues).
    pub(crate) nvq: u16,
    /// VI resources assigned to the VF.
    pub(crate) nvi: u16,
    /// MDTS of the destination PF in bytes (`None`: no limit).
    pub(crate) mdts: Option<u64>,
    /// CSUUIDI of the device model's vendor state, if the PF offers it.
    pub(crate) csuuidi: Option<u8>,
}

/// Why a stream was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// The stream itself is malformed (framing, lengths, checksum...).
    Stream(StreamError),
    /// The stream is well formed but does not fit this destination, or its
    /// contents contradict each other.
    Unfit(&'static str),
}

/// The highest I/O queue ID and the number of interrupt vectors that the
/// NVMe state uses.
pub(crate) fn queue_needs(s: &NvmeState<'_>) -> (u16, u16) {
    let mut max_qid = 0u16;
    let mut nvec = 0u16;
    for i in 0..s.niosq {
        if let Some(q) = s.sq(i) {
            max_qid = max_qid.max(q.qid);
        }
    }
    for i in 0..s.niocq {
        if let Some(q) = s.cq(i) {
            max_qid = max_qid.max(q.qid);
            if q.ien() {
                nvec = nvec.max(q.iv().saturating_add(1));
            }
        }
    }
    (max_qid, nvec)
}

/// The NVMe part of a TP4159 Controller State (header, then NVMe
/// Controller State version 0).
pub(crate) fn nvme_part(state: &[u8]) -> Result<NvmeState<'_>, &'static str> {
    let h = StateHeader::parse(state).map_err(|_| "malformed Controller State header")?;
    if h.ver != 0 {
        return Err("unsupported Controller State version");
    }
    if h.total_len() != Some(state.len() as u64) {
        return Err("Controller State length does not match its header");
    }
    let n = (h.nvmecss * 4) as usize;
    let body = state
        .get(STATE_HDR_LEN..STATE_HDR_LEN + n)
        .ok_or("Controller State length does not match its header")?;
    NvmeState::parse(body).map_err(|_| "malformed NVMe Controller State")
}

/// Checks a complete stream against `dest`; returns the TP4159 state to
/// load and the CSUUIDI to load it with.
pub(crate) fn check_stream<'a>(data: &'a [u8], dest: &Dest) -> Result<(&'a [u8], u8), Refusal> {
    let s = stream::parse(data).map_err(Refusal::Stream)?;
    let unfit = Refusal::Unfit;
    let id = s.identity;
    if (id.vendor, id.device, id.subvendor, id.subdevice) != dest.ids {
        return Err(unfit("source VF has different PCI IDs"));
    }
    let state = s
        .nvme_state
        .ok_or(unfit("stream carries no controller state"))?;
    let nv = nvme_part(state).map_err(unfit)?;
    let (max_qid, nvectors) = queue_needs(&nv);
    if max_qid != id.max_qid || nvectors != id.nvectors {
        return Err(unfit(
            "identity does not match the controller state it carries",
        ));
    }
    if max_qid >= dest.nvq {
        return Err(unfit(
            "destination VF has too few queue resources (VQ) for the source's queues",
        ));
    }
    if nvectors > dest.nvi {
        return Err(unfit(
            "destination VF has too few interrupt resources (VI) for the source's vectors",
        ));
    }
    let mdts = dest.mdts.unwrap_or(0);
    if id.mdts != 0 && mdts != 0 && mdts < id.mdts {
        return Err(unfit("destination MDTS is smaller than the source's"));
    }
    let csuuidi = if id.vendor_uuid == [0; 16] {
        0
    } else {
        if id.vendor_uuid != VENDOR_STATE_UUID {
            return Err(unfit("unknown vendor state UUID"));
        }
        dest.csuuidi.ok_or(unfit(
            "destination does not support the source's vendor state",
        ))?
    };
    if let Some((u, _)) = s.vendor {
        if u != id.vendor_uuid {
            return Err(unfit("vendor section UUID does not match the identity"));
        }
    }
    Ok((state, csuuidi))
}
