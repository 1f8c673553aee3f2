// SPDX-License-Identifier: GPL-2.0

//! Device-side dirty-page tracking behind VFIO's `vfio_log_ops`
//! (`VFIO_DEVICE_FEATURE_DMA_LOGGING_START/STOP/REPORT`).
//!
//! The upper half is format independent: it turns VFIO's interval tree of
//! IOVA ranges into a [`dirty::Plan`] (ranges merged to the device's limit,
//! granularity raised until the pages fit), keeps the [`Session`], splits a
//! report into commands and hands each dirty run to `iova_bitmap_set()`. A
//! tracking format plugs in below through [`TrackBackend`]; today the only
//! one is [`NvpTrack`], the project device model's vendor commands (NVP
//! Track Memory Send/Receive, C5h/C6h, `Documentation/device-model.rst`).
//! TP4159's own memory-change tracking (Track Send SEL 1h, Track Receive)
//! would be a second backend once its data layout is public.
//!
//! Locking: [`DirtyState`] lives in [`MigState`], under the VF's migration
//! mutex, which every entry point here runs under (the vfio log ops take it
//! through `vfio::with_ctx`, as the migration ops do, including the deferred
//! reset on release). PF commands are issued with it held, each taking the
//! PF's gate for its own duration. `iova_bitmap_set()` is called with the
//! mutex held; the runs it gets are clipped to the range VFIO asked for,
//! which is the part of the user bitmap that `iova_bitmap_for_each()` has
//! already pinned, so it never faults or pins user memory here.
//!
//! [`dirty::Plan`]: crate::protocol::dirty::Plan
//! [`MigState`]: crate::mig::MigState

use kernel::{
    alloc::KVVec,
    bindings,
    prelude::*, //
};

use crate::{
    mig::{
        self,
        MigState,
        VfCtx, //
    },
    pf::{
        CmdError,
        PfController, //
    },
    protocol::{
        dirty::{
            self,
            PlanError,
            Range,
            ReportCmd,
            Reports,
            TrackCaps,
            RANGE_DESC_LEN, //
        },
        tp4159, //
    },
    sys, //
};

/// A device-side tracking format: the commands that start, stop and read
/// the tracking of one secondary controller on its migration controller.
pub(crate) trait TrackBackend {
    /// A short name for messages.
    fn name(&self) -> &'static str;
    /// The device's limits.
    fn caps(&self) -> &TrackCaps;
    /// Starts tracking `ranges` (aligned to and counted in pages of
    /// `1 << gs` bytes, at most MAXR of them, at most MAXPG pages).
    fn start(
        &self,
        pf: &PfController,
        cntlid: u16,
        gs: u8,
        ranges: &[Range],
    ) -> Result<(), CmdError>;
    /// Stops tracking (succeeds when not tracking).
    fn stop(&self, pf: &PfController, cntlid: u16) -> Result<(), CmdError>;
    /// Reads and clears the dirty bits of the pages of `cmd` into `buf`
    /// (`cmd.bitmap_len()` bytes, bit i of byte i / 8 for page i).
    fn report(
        &self,
        pf: &PfController,
        cntlid: u16,
        cmd: &ReportCmd,
        buf: &mut [u8],
    ) -> Result<(), CmdError>;
}

/// The device model's vendor tracking (NVPT in Identify Controller,
/// C5h/C6h on the PF).
#[derive(Debug, Clone, Copy)]
pub(crate) struct NvpTrack {
    caps: TrackCaps,
}

impl TrackBackend for NvpTrack {
    fn name(&self) -> &'static str {
        "NVP Track Memory"
    }

    fn caps(&self) -> &TrackCaps {
        &self.caps
    }

    fn start(
        &self,
        pf: &PfController,
        cntlid: u16,
        gs: u8,
        ranges: &[Range],
    ) -> Result<(), CmdError> {
        let nr = u16::try_from(ranges.len()).map_err(|_| EINVAL)?;
        let sqe = tp4159::track_mem_start(cntlid, gs, nr).ok_or(EINVAL)?;
        let mut data = KVVec::from_elem(0u8, ranges.len() * RANGE_DESC_LEN, GFP_KERNEL)
            .map_err(Error::from)?;
        dirty::encode_ranges(ranges, &mut data).ok_or(EINVAL)?;
        pf.admin(&sqe, Some(&mut data), 0).map(|_| ())
    }

    fn stop(&self, pf: &PfController, cntlid: u16) -> Result<(), CmdError> {
        pf.admin(&tp4159::track_mem_stop(cntlid), None, 0)
            .map(|_| ())
    }

    fn report(
        &self,
        pf: &PfController,
        cntlid: u16,
        cmd: &ReportCmd,
        buf: &mut [u8],
    ) -> Result<(), CmdError> {
        let sqe = tp4159::track_mem_report(cntlid, cmd.start, cmd.npg).ok_or(EINVAL)?;
        pf.admin(&sqe, Some(buf), 0).map(|_| ())
    }
}

/// The tracking formats; [`Backend::get`] gives the common interface.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Backend {
    /// The device model's vendor commands.
    Nvp(NvpTrack),
}

impl Backend {
    /// The format's operations.
    fn get(&self) -> &dyn TrackBackend {
        match self {
            Backend::Nvp(b) => b,
        }
    }
}

/// The tracking format the PF offers, if any.
pub(crate) fn backend(pf: &PfController) -> Option<Backend> {
    pf.caps()
        .id
        .nvpt
        .map(|caps| Backend::Nvp(NvpTrack { caps }))
}

/// One tracking session, from a successful start to a stop.
struct Session {
    /// The format that started it.
    be: Backend,
    /// Granularity, log2 bytes.
    gs: u8,
    /// The ranges tracked (aligned, sorted, disjoint).
    ranges: KVVec<Range>,
    /// Most pages per Report.
    max_pages: u32,
    /// The bitmap of one Report (allocated at start, so a report does not
    /// allocate).
    buf: KVVec<u8>,
}

/// Dirty tracking state of one VF, under the VF's migration mutex (see the
/// module documentation).
pub(crate) struct DirtyState {
    session: Option<Session>,
}

impl DirtyState {
    /// Not tracking.
    pub(crate) fn new() -> Self {
        Self { session: None }
    }
}

/// Logs a failed tracking command and turns it into an errno.
fn cmd_err(cx: &VfCtx<'_>, be: &dyn TrackBackend, what: &str, e: CmdError) -> Error {
    let e = mig::cmd_err(cx, what, e);
    dev_err!(cx.dev, "dirty tracking ({}) failed\n", be.name());
    e
}

/// The ranges of VFIO's interval tree, in ascending order.
///
/// # Safety
///
/// `root` must be the interval tree VFIO passes to `log_start`, with
/// `nnodes` nodes, alive for the call.
unsafe fn collect_ranges(root: *mut bindings::rb_root_cached, nnodes: u32) -> Result<KVVec<Range>> {
    let n = nnodes as usize;
    let mut raw = KVVec::from_elem(0u64, n * 2, GFP_KERNEL)?;
    // SAFETY: `root` is a live interval tree (caller); `raw` holds `2 *
    // nnodes` values and the glue stores at most `nnodes` pairs.
    let found = unsafe { sys::nvp_iova_ranges(root, raw.as_mut_ptr(), nnodes) };
    if found != nnodes {
        return Err(EINVAL);
    }
    let mut out = KVVec::with_capacity(n, GFP_KERNEL)?;
    for p in raw.chunks_exact(2) {
        out.push(Range::from_last(p[0], p[1]).ok_or(EINVAL)?, GFP_KERNEL)?;
    }
    Ok(out)
}

/// `log_start`: plans and starts a session over the ranges of `root`. The
/// granularity chosen (at least the requested page size) is written back
/// to `page_size`.
///
/// # Safety
///
/// As for [`collect_ranges`].
pub(crate) unsafe fn start(
    cx: &VfCtx<'_>,
    m: &mut MigState,
    root: *mut bindings::rb_root_cached,
    nnodes: u32,
    page_size: &mut u64,
) -> Result {
    if m.dirty.session.is_some() {
        dev_err!(cx.dev, "dirty tracking is already started\n");
        return Err(EBUSY);
    }
    let be = backend(cx.pf).ok_or(EOPNOTSUPP)?;
    let ops = be.get();
    let caps = *ops.caps();
    // SAFETY: By the function's safety requirement.
    let mut ranges = unsafe { collect_ranges(root, nnodes) }?;
    let plan = dirty::plan(&mut ranges, *page_size, &caps).map_err(|e| {
        match e {
            PlanError::TooLarge {
                pages,
                maxpg,
                maxgs,
            } => dev_err!(
                cx.dev,
                "dirty tracking: the {} ranges need {} pages even at the device's largest granularity (2^{} bytes); it tracks at most {}\n",
                nnodes,
                pages,
                maxgs,
                maxpg
            ),
            PlanError::PageTooLarge { shift, maxgs } => dev_err!(
                cx.dev,
                "dirty tracking: page size 2^{} is above the device's largest granularity 2^{}\n",
                shift,
                maxgs
            ),
            PlanError::BadRanges | PlanError::BadPageSize => dev_err!(
                cx.dev,
                "dirty tracking: invalid ranges or page size {}\n",
                *page_size
            ),
        }
        match e {
            PlanError::TooLarge { .. } | PlanError::PageTooLarge { .. } => E2BIG,
            PlanError::BadRanges | PlanError::BadPageSize => EINVAL,
        }
    })?;
    ranges.truncate(plan.nranges);
    let max_pages = caps.report_pages(cx.pf.max_xfer());
    if max_pages == 0 {
        dev_err!(
            cx.dev,
            "dirty tracking: the PF's MDTS cannot carry a report\n"
        );
        return Err(EINVAL);
    }
    let buf = KVVec::from_elem(
        0u8,
        ReportCmd {
            start: 0,
            npg: max_pages,
        }
        .bitmap_len(),
        GFP_KERNEL,
    )?;
    ops.start(cx.pf, cx.scid, plan.gs, &ranges)
        .map_err(|e| cmd_err(cx, ops, "Track Memory Start", e))?;
    dev_info!(
        cx.dev,
        "dirty tracking ({}) started: {} ranges (from {}), granularity 2^{} bytes, {} pages\n",
        ops.name(),
        plan.nranges,
        nnodes,
        plan.gs,
        plan.pages
    );
    *page_size = plan.granule();
    m.dirty.session = Some(Session {
        be,
        gs: plan.gs,
        ranges,
        max_pages,
        buf,
    });
    Ok(())
}

/// `log_stop`, and the stop at close: ends the session if there is one. A
/// failed Stop is logged and otherwise ignored: the session is forgotten
/// either way (a PF that went away has stopped tracking by itself).
pub(crate) fn stop(cx: &VfCtx<'_>, m: &mut MigState) {
    if let Some(s) = m.dirty.session.take() {
        let ops = s.be.get();
        if let Err(e) = ops.stop(cx.pf, cx.scid) {
            let _ = cmd_err(cx, ops, "Track Memory Stop", e);
        }
    }
}

/// `log_read_and_clear`: reads and clears the dirty pages of `iova..iova +
/// length` and sets them in `bitmap`. Fails with `EINVAL` when not
/// tracking.
///
/// # Safety
///
/// `bitmap` must be the `iova_bitmap` VFIO passes with this range, whose
/// current window covers it.
pub(crate) unsafe fn read_and_clear(
    cx: &VfCtx<'_>,
    m: &mut MigState,
    iova: u64,
    length: u64,
    bitmap: *mut sys::iova_bitmap,
) -> Result {
    let Some(s) = m.dirty.session.as_mut() else {
        return Err(EINVAL);
    };
    let ops = s.be.get();
    for cmd in Reports::new(&s.ranges, s.gs, iova, length, s.max_pages) {
        let buf = s.buf.get_mut(..cmd.bitmap_len()).ok_or(EINVAL)?;
        buf.fill(0);
        ops.report(cx.pf, cx.scid, &cmd, buf)
            .map_err(|e| cmd_err(cx, ops, "Track Memory Report", e))?;
        dirty::dirty_runs(buf, &cmd, s.gs, iova, length, |start, len| {
            // SAFETY: `bitmap` is VFIO's for this range (caller); the run
            // lies inside `iova..iova + length`, so within its window.
            unsafe { sys::iova_bitmap_set(bitmap, start as usize, len as usize) };
        });
    }
    Ok(())
}

/// Whether dirty tracking should be offered on this PF.
pub(crate) fn supported(pf: &PfController) -> bool {
    backend(pf).is_some()
}
