// SPDX-License-Identifier: GPL-2.0

//! The VFIO migration state machine of one VF (uAPI v2, STOP_COPY + P2P),
//! one function per arc, stepped with `vfio_mig_get_next_state()`.
//!
//! | Arc                    | Device action                                  |
//! |------------------------|------------------------------------------------|
//! | RUNNING → RUNNING_P2P  | Migration Send Suspend (fetched commands drain)|
//! | RUNNING_P2P → STOP     | none: a suspended controller is already quiet  |
//! | STOP → STOP_COPY       | Get Controller State, build the stream, save fd|
//! | STOP_COPY → STOP       | drop the save fd                               |
//! | STOP → RESUMING        | resume fd (nothing touches the device)         |
//! | RESUMING → STOP        | validate the whole stream, Suspend, Set State  |
//! | STOP → RUNNING_P2P     | none                                           |
//! | RUNNING_P2P → RUNNING  | Migration Send Resume                          |
//!
//! Locking: [`MigState`] lives under the VF's state mutex, taken by every
//! entry point here (set/get state, reset, close). PF commands are issued
//! with it held (they sleep, never touch user memory). The migration files
//! copy to and from user memory under their own lock only ([`crate::migf`]).

use kernel::{
    alloc::KVVec,
    bindings,
    device,
    error::to_result,
    prelude::*,
    sync::Arc, //
};

use crate::{
    dirty::DirtyState,
    migf::{
        Dir,
        MigFile, //
    },
    pf::{
        self,
        CmdError,
        PfController,
        PfHandle, //
    },
    protocol::{
        dest::{
            self,
            Dest,
            Refusal, //
        },
        status::sct,
        stream::{
            sec,
            Identity,
            Writer,
            IDENTITY_LEN,
            SEC_CRITICAL, //
        },
        tp4159,
        VENDOR_STATE_UUID, //
    },
    sys,
    tp4159 as ops, //
};

/// `enum vfio_device_mig_state` values (uAPI, fixed).
pub(crate) mod st {
    /// ERROR.
    pub(crate) const ERROR: u32 = 0;
    /// STOP.
    pub(crate) const STOP: u32 = 1;
    /// RUNNING.
    pub(crate) const RUNNING: u32 = 2;
    /// STOP_COPY.
    pub(crate) const STOP_COPY: u32 = 3;
    /// RESUMING.
    pub(crate) const RESUMING: u32 = 4;
    /// RUNNING_P2P.
    pub(crate) const RUNNING_P2P: u32 = 5;
}

/// Migration state of one VF, under the VF's state mutex.
pub(crate) struct MigState {
    /// The PF's migration controller; replaced when it was fenced (the PF
    /// went away) and the PF is back.
    pub(crate) pf: PfHandle,
    /// The current VFIO migration state.
    pub(crate) state: u32,
    /// Whether this driver has the VF's controller suspended.
    pub(crate) suspended: bool,
    /// The save file (STOP_COPY).
    pub(crate) save: Option<Arc<MigFile>>,
    /// The resume file (RESUMING).
    pub(crate) resume: Option<Arc<MigFile>>,
    /// Device dirty-page tracking ([`crate::dirty`]); independent of the
    /// migration state (a VF reset does not end it, close does).
    pub(crate) dirty: DirtyState,
}

impl MigState {
    /// The state of a VF that has just been bound.
    pub(crate) fn new(pf: PfHandle) -> Self {
        Self {
            pf,
            state: st::RUNNING,
            suspended: false,
            save: None,
            resume: None,
            dirty: DirtyState::new(),
        }
    }
}

/// The PF's migration controller for one operation on VF `pdev`. When the
/// controller this VF holds was fenced (its PF was unbound) and the PF is
/// driven by nvme again, the VF switches to the PF's new controller.
pub(crate) fn current_pf(
    dev: &device::Device,
    pdev: *mut bindings::pci_dev,
    m: &mut MigState,
) -> Arc<PfController> {
    if m.pf.fenced() {
        if let Ok(h) = pf::get(pdev) {
            dev_info!(dev, "PF is back: using its migration controller again\n");
            m.pf = h;
        }
    }
    m.pf.arc()
}

/// What the state machine needs to know about its VF.
pub(crate) struct VfCtx<'a> {
    /// The VF's device, for messages.
    pub(crate) dev: &'a device::Device,
    /// The VF's vfio device.
    pub(crate) vdev: *mut sys::vfio_device,
    /// The VF's PCI function.
    pub(crate) pdev: *mut bindings::pci_dev,
    /// The PF's migration controller.
    pub(crate) pf: &'a PfController,
    /// The VF's number on its PF (1-based).
    pub(crate) vfn: u16,
    /// The VF's secondary controller ID.
    pub(crate) scid: u16,
    /// VQ resources assigned to the VF (admin + I/O queues), as of probe;
    /// the destination re-reads them before it checks a stream.
    pub(crate) nvq: u16,
    /// VI resources assigned to the VF, as of probe.
    pub(crate) nvi: u16,
}

/// `cx` with the VF's VQ and VI resources read afresh from the PF's
/// Secondary Controller List: an administrator may assign them after the VF
/// was bound (a VF bound while offline has none).
fn with_current_resources<'a>(cx: &VfCtx<'a>) -> Result<VfCtx<'a>> {
    match cx.pf.secondary_of_vf(cx.vfn) {
        Ok(Some(sc)) if sc.scid == cx.scid => Ok(VfCtx {
            nvq: sc.nvq,
            nvi: sc.nvi,
            ..*cx
        }),
        Ok(_) => {
            dev_err!(
                cx.dev,
                "secondary controller {} is no longer VF {}'s in the PF's list\n",
                cx.scid,
                cx.vfn
            );
            Err(ENODEV)
        }
        Err(e) => {
            dev_err!(
                cx.dev,
                "reading the PF's Secondary Controller List failed ({:?})\n",
                e
            );
            Err(e)
        }
    }
}

/// Logs a failed PF command and turns it into an errno.
pub(crate) fn cmd_err(cx: &VfCtx<'_>, what: &str, e: CmdError) -> Error {
    match e {
        CmdError::Nvme(s) => dev_err!(
            cx.dev,
            "{} of controller {} failed: NVMe status SCT {:#x} SC {:#x}{}\n",
            what,
            cx.scid,
            s.sct(),
            s.sc(),
            if s.dnr() { " (DNR)" } else { "" }
        ),
        CmdError::Errno(e) => dev_err!(
            cx.dev,
            "{} of controller {} failed: {:?}\n",
            what,
            cx.scid,
            e
        ),
    }
    e.into()
}

/// Suspends the VF's controller (idempotent).
fn suspend(cx: &VfCtx<'_>, m: &mut MigState) -> Result {
    if !m.suspended {
        ops::suspend(cx.pf, cx.scid).map_err(|e| cmd_err(cx, "Suspend", e))?;
        m.suspended = true;
    }
    Ok(())
}

/// Resumes the VF's controller if this driver suspended it.
fn resume(cx: &VfCtx<'_>, m: &mut MigState) -> Result {
    if m.suspended {
        match ops::resume(cx.pf, cx.scid) {
            Ok(()) => {}
            // Already running (e.g. reset by an FLR): nothing to undo.
            Err(CmdError::Nvme(s))
                if s.sct() == sct::COMMAND_SPECIFIC && s.sc() == tp4159::sc::CTRL_NOT_SUSPENDED => {
            }
            Err(e) => return Err(cmd_err(cx, "Resume", e)),
        }
        m.suspended = false;
    }
    Ok(())
}

/// Drops both migration files, making them unusable.
pub(crate) fn drop_files(m: &mut MigState) {
    if let Some(f) = m.save.take() {
        f.disable();
    }
    if let Some(f) = m.resume.take() {
        f.disable();
    }
}

/// The PCI identity of the VF.
fn pci_ids(pdev: *mut bindings::pci_dev) -> (u16, u16, u16, u16) {
    // SAFETY: `pdev` is the bound VF, live while its vfio device exists.
    unsafe {
        (
            (*pdev).vendor,
            (*pdev).device,
            (*pdev).subsystem_vendor,
            (*pdev).subsystem_device,
        )
    }
}

/// The CSVI of NVMe controller state version 0 and the CSUUIDI of the
/// device model's vendor state (if offered), from Identify CNS 20h.
fn state_formats(cx: &VfCtx<'_>) -> Result<(u8, Option<u8>)> {
    let f = ops::formats(cx.pf);
    let csvi = f.csvi_v0.ok_or_else(|| {
        dev_err!(
            cx.dev,
            "the PF does not offer NVMe controller state version 0\n"
        );
        EOPNOTSUPP
    })?;
    Ok((csvi, f.csuuidi))
}

/// STOP → STOP_COPY: capture the suspended controller and serve the stream.
fn stop_to_stop_copy(cx: &VfCtx<'_>, m: &mut MigState) -> Result<*mut bindings::file> {
    let (csvi, csuuidi) = state_formats(cx)?;
    let csuuidi = csuuidi.unwrap_or(0);
    let (state, csup) = ops::get_state(cx.pf, cx.scid, csvi, csuuidi)
        .map_err(|e| cmd_err(cx, "Get Controller State", e))?;
    if !csup {
        dev_err!(
            cx.dev,
            "controller {} was not suspended when its state was captured\n",
            cx.scid
        );
        return Err(EIO);
    }
    let nv = dest::nvme_part(&state).map_err(|why| {
        dev_err!(cx.dev, "source controller state refused: {}\n", why);
        EPROTO
    })?;
    let (max_qid, nvectors) = dest::queue_needs(&nv);
    let (vendor, device, subvendor, subdevice) = pci_ids(cx.pdev);
    let id = Identity {
        vendor,
        device,
        subvendor,
        subdevice,
        scid: cx.scid,
        nvq: cx.nvq,
        nvi: cx.nvi,
        max_qid,
        nvectors,
        rsvd: 0,
        mdts: cx.pf.caps().mdts.unwrap_or(0),
        vendor_uuid: if csuuidi != 0 {
            VENDOR_STATE_UUID
        } else {
            [0; 16]
        },
    }
    .encode();
    let len = Writer::size_for(&[IDENTITY_LEN, state.len()]).ok_or(EOVERFLOW)?;
    let mut buf = KVVec::from_elem(0u8, len, GFP_KERNEL)?;
    let mut w = Writer::new(&mut buf).ok_or(EINVAL)?;
    w.section(sec::IDENTITY, SEC_CRITICAL, &[&id])
        .ok_or(EINVAL)?;
    w.section(sec::NVME_STATE, SEC_CRITICAL, &[&state])
        .ok_or(EINVAL)?;
    let n = w.finish(0).ok_or(EINVAL)?;
    buf.truncate(n);
    let (mf, filp) = MigFile::create(Dir::Save, buf)?;
    m.save = Some(mf);
    Ok(filp)
}

/// STOP → RESUMING: a resume file; nothing touches the device until the
/// whole stream is in and checked.
fn stop_to_resuming(_cx: &VfCtx<'_>, m: &mut MigState) -> Result<*mut bindings::file> {
    let (mf, filp) = MigFile::create(Dir::Resume, KVVec::new())?;
    m.resume = Some(mf);
    Ok(filp)
}

/// Checks a complete stream against this destination; returns the TP4159
/// state to load and its CSUUIDI.
fn check_stream<'a>(
    cx: &VfCtx<'_>,
    data: &'a [u8],
    csuuidi_dest: Option<u8>,
) -> Result<(&'a [u8], u8), &'static str> {
    let d = Dest {
        ids: pci_ids(cx.pdev),
        nvq: cx.nvq,
        nvi: cx.nvi,
        mdts: cx.pf.caps().mdts,
        csuuidi: csuuidi_dest,
    };
    dest::check_stream(data, &d).map_err(|r| match r {
        Refusal::Stream(e) => {
            dev_err!(cx.dev, "migration stream: {:?}\n", e);
            "malformed migration stream"
        }
        Refusal::Unfit(why) => why,
    })
}

/// RESUMING → STOP: validate everything, then load the destination.
fn resuming_to_stop(cx: &VfCtx<'_>, m: &mut MigState) -> Result {
    let mf = m.resume.take().ok_or(EINVAL)?;
    let data = mf.take()?;
    let cx = &with_current_resources(cx)?;
    let (csvi, csuuidi_dest) = state_formats(cx)?;
    let (state, csuuidi) = check_stream(cx, &data, csuuidi_dest).map_err(|why| {
        dev_err!(cx.dev, "migration stream refused: {}\n", why);
        EINVAL
    })?;
    let mut copy = KVVec::with_capacity(state.len(), GFP_KERNEL)?;
    copy.extend_from_slice(state, GFP_KERNEL)?;
    let mut state = copy;
    suspend(cx, m)?;
    ops::set_state(cx.pf, cx.scid, csvi, csuuidi, &mut state)
        .map_err(|e| cmd_err(cx, "Set Controller State", e))
}

/// Runs one arc.
fn step(cx: &VfCtx<'_>, m: &mut MigState, cur: u32, next: u32) -> Result<*mut bindings::file> {
    let none = core::ptr::null_mut();
    match (cur, next) {
        (st::RUNNING, st::RUNNING_P2P) => suspend(cx, m).map(|()| none),
        (st::RUNNING_P2P, st::RUNNING) => resume(cx, m).map(|()| none),
        (st::RUNNING_P2P, st::STOP) | (st::STOP, st::RUNNING_P2P) => Ok(none),
        (st::STOP, st::STOP_COPY) => stop_to_stop_copy(cx, m),
        (st::STOP_COPY, st::STOP) => {
            drop_files(m);
            Ok(none)
        }
        (st::STOP, st::RESUMING) => stop_to_resuming(cx, m),
        (st::RESUMING, st::STOP) => {
            let r = resuming_to_stop(cx, m);
            drop_files(m);
            r.map(|()| none)
        }
        _ => {
            dev_err!(cx.dev, "unexpected migration arc {} -> {}\n", cur, next);
            Err(EINVAL)
        }
    }
}

/// `migration_set_state`: walks the arcs from the current state to `new`.
/// On failure the device stays in the last state reached.
pub(crate) fn set_state(cx: &VfCtx<'_>, m: &mut MigState, new: u32) -> Result<*mut bindings::file> {
    let mut res: *mut bindings::file = core::ptr::null_mut();
    while m.state != new {
        let mut next: u32 = st::ERROR;
        // SAFETY: `cx.vdev` is a registered vfio device; `next` is valid.
        to_result(unsafe { sys::vfio_mig_get_next_state(cx.vdev, m.state, new, &mut next) })?;
        if !res.is_null() {
            // A data state is never an interior state of a path.
            dev_err!(cx.dev, "migration path passes through a data state\n");
            return Err(EINVAL);
        }
        res = step(cx, m, m.state, next)?;
        m.state = next;
    }
    Ok(res)
}

/// Size estimate of the stop-copy data.
pub(crate) fn data_size(cx: &VfCtx<'_>) -> Result<usize> {
    let f = ops::formats(cx.pf);
    let csvi = f.csvi_v0.ok_or(EOPNOTSUPP)?;
    let total = ops::state_len(cx.pf, cx.scid, csvi, f.csuuidi.unwrap_or(0))?;
    Writer::size_for(&[IDENTITY_LEN, total]).ok_or(EOVERFLOW)
}

/// The VF was reset (FLR, VFIO_DEVICE_RESET) or closed: the files die and
/// the state is RUNNING again, with the controller not suspended.
pub(crate) fn reset(cx: &VfCtx<'_>, m: &mut MigState) {
    drop_files(m);
    if let Err(e) = resume(cx, m) {
        dev_warn!(
            cx.dev,
            "resume after reset failed ({:?}); the controller may stay suspended\n",
            e
        );
        m.suspended = false;
    }
    m.state = st::RUNNING;
}

/// Whether migration should be offered on this PF.
pub(crate) fn supported(pf: &PfController) -> bool {
    pf.caps().id.hmlms()
}
