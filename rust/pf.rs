// SPDX-License-Identifier: GPL-2.0

//! The migration controller: the PF of a VF, driven by nvme-pci.
//!
//! A [`PfController`] owns a reference to the PF's `struct nvme_ctrl` and
//! submits admin commands on its admin queue, one at a time per PF. It is
//! shared (through [`Arc`]) by every VF of that PF bound to this driver, and
//! kept in a global registry so that the PCI bus notifier can fence it when
//! nvme-pci starts to unbind from the PF: from then on every command fails
//! with `ENODEV` and the controller reference is dropped, so nothing here
//! outlives the PF's `nvme_ctrl`.
//!
//! Locking: [`PF_REGISTRY`] (a global mutex) protects the registry and is
//! taken before a controller's `gate` mutex; the `gate` mutex serialises the
//! admin commands of one PF and protects the controller reference. Neither
//! lock is taken with a device lock held by this driver besides the probing
//! VF's own.

use core::ptr::NonNull;

use kernel::{
    bindings, device,
    error::to_result,
    new_mutex, pci,
    prelude::*,
    sync::{
        aref::ARef,
        global_lock,
        Arc,
        Mutex, //
    },
};

use crate::{
    protocol::{
        identify::{
            self,
            IdCtrl,
            SecondaryCtrl, //
        },
        sqe::Sqe,
        status::Status,
        tp4159::StateFormats,
        DecodeError,
        VENDOR_STATE_UUID, //
    },
    sys, //
};

/// A counted reference to a PF's `struct nvme_ctrl`.
///
/// # Invariants
///
/// `self.0` came from `nvp_pf_ctrl_get()` and the reference it holds is
/// released exactly once, in `drop`.
struct CtrlRef(NonNull<sys::nvme_ctrl>);

// SAFETY: `struct nvme_ctrl` is used by nvme-core from any thread; the
// functions called through this reference do their own locking.
unsafe impl Send for CtrlRef {}

impl Drop for CtrlRef {
    fn drop(&mut self) {
        // SAFETY: By the type invariant the reference is held and is released
        // only here.
        unsafe { sys::nvp_ctrl_put(self.0.as_ptr()) };
    }
}

/// A value that can be fenced: once [`Gate::fence`] has run, every access
/// fails with `ENODEV`. Accesses are serialised by the gate's mutex.
#[pin_data]
pub(crate) struct Gate<T: Send + Unpin> {
    #[pin]
    inner: Mutex<Option<T>>,
}

impl<T: Send + Unpin> Gate<T> {
    /// A gate that lets accesses through to `v`.
    pub(crate) fn new(v: T) -> impl PinInit<Self> {
        pin_init!(Self {
            inner <- new_mutex!(Some(v)),
        })
    }

    /// Runs `f` on the value with the gate held, unless fenced.
    pub(crate) fn with<R>(&self, f: impl FnOnce(&T) -> R) -> Result<R> {
        let g = self.inner.lock();
        match g.as_ref() {
            Some(v) => Ok(f(v)),
            None => Err(ENODEV),
        }
    }

    /// Fences the gate after any access in progress; returns the value the
    /// first time, so the caller decides when it is dropped.
    pub(crate) fn fence(&self) -> Option<T> {
        let mut g = self.inner.lock();
        g.take()
    }

    /// Whether the gate has been fenced.
    pub(crate) fn fenced(&self) -> bool {
        self.inner.lock().is_none()
    }
}

/// Why an admin command on the PF failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CmdError {
    /// The command never reached the controller, or the PF is gone.
    Errno(Error),
    /// The controller completed it with an error status.
    Nvme(Status),
}

impl From<CmdError> for Error {
    fn from(e: CmdError) -> Error {
        match e {
            CmdError::Errno(e) => e,
            CmdError::Nvme(_) => EIO,
        }
    }
}

impl From<Error> for CmdError {
    fn from(e: Error) -> CmdError {
        CmdError::Errno(e)
    }
}

/// What the driver learnt about the PF at discovery.
#[derive(Debug, Clone, Copy)]
pub(crate) struct PfCaps {
    /// The PF's Identify Controller.
    pub(crate) id: IdCtrl,
    /// CAP.MPSMIN.
    pub(crate) mpsmin: u8,
    /// Maximum data transfer size in bytes (`None`: no limit).
    pub(crate) mdts: Option<u64>,
    /// N of /dev/nvmeN.
    pub(crate) instance: i32,
    /// CSVI of NVMe controller state version 0 (Identify CNS 20h), when the
    /// PF supports Host Managed Live Migration and offers it.
    pub(crate) csvi_v0: Option<u8>,
    /// CSUUIDI of the device model's vendor state, when offered.
    pub(crate) csuuidi: Option<u8>,
}

/// The migration controller of one PF.
#[pin_data]
pub(crate) struct PfController {
    /// The PF.
    pdev: ARef<pci::Device>,
    /// Capabilities read at discovery (immutable).
    caps: PfCaps,
    /// The controller reference, fenced when the PF goes away; its mutex
    /// serialises this PF's admin commands.
    #[pin]
    gate: Gate<CtrlRef>,
}

/// Submits one admin command on `ctrl`.
fn submit(
    ctrl: &CtrlRef,
    sqe: &Sqe,
    buf: Option<&mut [u8]>,
    timeout_ms: u32,
) -> Result<u32, CmdError> {
    let dw = sqe.to_le_dwords();
    let (ptr, len) = match buf {
        Some(b) => (
            b.as_mut_ptr().cast::<c_void>(),
            u32::try_from(b.len()).map_err(|_| EINVAL)?,
        ),
        None => (core::ptr::null_mut(), 0),
    };
    let mut result: u32 = 0;
    // SAFETY: `ctrl` holds a controller reference (type invariant); `dw` is
    // 16 dwords; `ptr`/`len` describe a live kernel buffer or are null/0;
    // `result` is a valid `u32`.
    let ret = unsafe {
        sys::nvp_ctrl_admin_cmd(
            ctrl.0.as_ptr(),
            dw.as_ptr(),
            ptr,
            len,
            &mut result,
            timeout_ms,
        )
    };
    match ret {
        0 => Ok(result),
        r if r < 0 => Err(CmdError::Errno(Error::from_errno(r))),
        // Positive: an NVMe status (at most 16 bits used).
        r => Err(CmdError::Nvme(Status(r as u16))),
    }
}

impl PfController {
    /// The PF.
    pub(crate) fn pdev(&self) -> &pci::Device {
        &self.pdev
    }

    /// Capabilities read at discovery.
    pub(crate) fn caps(&self) -> &PfCaps {
        &self.caps
    }

    /// Whether the PF has gone away.
    pub(crate) fn fenced(&self) -> bool {
        self.gate.fenced()
    }

    /// Submits one admin command to the PF and waits for it. `timeout_ms` 0
    /// uses nvme-core's admin timeout. Returns CQE DW0.
    pub(crate) fn admin(
        &self,
        sqe: &Sqe,
        buf: Option<&mut [u8]>,
        timeout_ms: u32,
    ) -> Result<u32, CmdError> {
        self.gate.with(|c| submit(c, sqe, buf, timeout_ms))?
    }

    /// Identify into `buf` (4 KiB), logging a failure.
    fn identify(&self, cns: u8, cntid: u16, buf: &mut [u8]) -> Result<(), CmdError> {
        self.admin(&identify::identify(cns, cntid, 0), Some(buf), 0)
            .map(|_| ())
            .inspect_err(|e| {
                dev_err!(
                    self.pdev.as_ref(),
                    "Identify CNS {:#x} on the PF failed: {:?}\n",
                    cns,
                    e
                )
            })
    }

    /// Looks up the secondary controller of VF `vfn` (1-based).
    pub(crate) fn secondary_of_vf(&self, vfn: u16) -> Result<Option<SecondaryCtrl>> {
        let mut buf = KVec::from_elem(0u8, identify::IDENTIFY_LEN, GFP_KERNEL)?;
        let pcid = self.caps.id.cntlid;
        let r = identify::find_secondary(
            pcid,
            vfn,
            &mut buf,
            |cntid, b| {
                self.identify(identify::cns::SECONDARY_CTRL_LIST, cntid, b)
                    .map_err(Error::from)
            },
            |e: DecodeError| {
                dev_err!(
                    self.pdev.as_ref(),
                    "malformed Secondary Controller List: {:?}\n",
                    e
                );
                EPROTO
            },
        )?;
        Ok(r)
    }

    /// The largest single data transfer: MDTS, capped so one command never
    /// maps more than 1 MiB of kernel memory.
    pub(crate) fn max_xfer(&self) -> usize {
        const CAP: u64 = 1 << 20;
        self.caps.mdts.unwrap_or(CAP).min(CAP) as usize
    }

    /// Fences this controller: waits for a command in progress, then makes
    /// every later command fail, and drops the controller reference.
    fn fence(&self, why: &str) {
        if let Some(c) = self.gate.fence() {
            dev_warn!(self.pdev.as_ref(), "migration controller fenced: {}\n", why);
            drop(c);
        }
    }
}

/// One registry entry: a PF's controller and how many VFs use it.
pub(crate) struct RegEntry {
    /// `struct pci_dev *` of the PF, as an address (only compared).
    key: usize,
    ctl: Arc<PfController>,
    users: usize,
}

global_lock! {
    // SAFETY: Initialised by `Registry::init` at module load, before the PCI
    // driver and the bus notifier are registered.
    unsafe(uninit) static PF_REGISTRY: Mutex<KVec<RegEntry>> = KVec::new();
}

/// The module's hold on [`PF_REGISTRY`]: initialises it at load and frees
/// its memory at unload (a static is never dropped, so without this every
/// load would leak the vector's buffer; kmemleak found it).
pub(crate) struct Registry(());

impl Registry {
    /// Initialises the registry; called once, at module load.
    pub(crate) fn init() -> Self {
        // SAFETY: Called once, from module init, before any other use.
        unsafe { PF_REGISTRY.init() };
        Registry(())
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        // The driver and the bus notifier are gone (they drop first): no VF
        // holds a handle any more, so this drops only the buffer.
        let old = core::mem::replace(&mut *PF_REGISTRY.lock(), KVec::new());
        drop(old);
    }
}

/// Discovers a PF's migration controller: takes the nvme_ctrl reference,
/// checks it is live, reads Identify Controller.
fn discover(pf: &pci::Device, pf_raw: *mut bindings::pci_dev) -> Result<Arc<PfController>> {
    // SAFETY: `pf_raw` is a live PCI device (the physfn of a bound VF).
    let ctrl = unsafe { sys::nvp_pf_ctrl_get(pf_raw) };
    let ctrl = kernel::error::from_err_ptr(ctrl).inspect_err(|e| {
        if *e == EOPNOTSUPP {
            dev_err!(
                pf.as_ref(),
                "PF controller is not an nvme-pci (PCIe) controller\n"
            );
        } else {
            dev_err!(
                pf.as_ref(),
                "PF is not driven by nvme-pci or has no NVMe controller\n"
            );
        }
    })?;
    let ctrl = CtrlRef(NonNull::new(ctrl).ok_or(ENODEV)?);
    // SAFETY: `ctrl` holds a reference.
    if !unsafe { sys::nvp_ctrl_live(ctrl.0.as_ptr()) } {
        dev_err!(pf.as_ref(), "PF NVMe controller is not live\n");
        return Err(ENODEV);
    }
    // SAFETY: `ctrl` holds a reference.
    let cap = unsafe { sys::nvp_ctrl_cap(ctrl.0.as_ptr()) };
    // SAFETY: `ctrl` holds a reference.
    let instance = unsafe { sys::nvp_ctrl_instance(ctrl.0.as_ptr()) };
    let mut buf = KVec::from_elem(0u8, identify::IDENTIFY_LEN, GFP_KERNEL)?;
    submit(
        &ctrl,
        &identify::identify(identify::cns::CTRL, 0, 0),
        Some(&mut buf),
        0,
    )
    .map_err(|e| {
        dev_err!(
            pf.as_ref(),
            "Identify Controller on the PF failed: {:?}\n",
            e
        );
        Error::from(e)
    })?;
    let id = IdCtrl::parse(&buf).map_err(|e| {
        dev_err!(pf.as_ref(), "malformed Identify Controller: {:?}\n", e);
        EPROTO
    })?;
    let mpsmin = identify::cap_mpsmin(cap);
    let (mut csvi_v0, mut csuuidi) = (None, None);
    if id.hmlms() {
        buf.fill(0);
        let sqe = identify::identify(identify::cns::CTRL_STATE_FORMATS, 0, 0);
        match submit(&ctrl, &sqe, Some(&mut buf), 0) {
            Ok(_) => match StateFormats::parse(&buf) {
                Ok(f) => {
                    csvi_v0 = f.csvi_of(0);
                    csuuidi = f.csuuidi_of(&VENDOR_STATE_UUID);
                }
                Err(e) => dev_err!(
                    pf.as_ref(),
                    "malformed Supported Controller State Formats: {:?}\n",
                    e
                ),
            },
            Err(e) => dev_err!(pf.as_ref(), "Identify CNS 20h on the PF failed: {:?}\n", e),
        }
    }
    let caps = PfCaps {
        mdts: id.mdts_bytes(mpsmin),
        id,
        mpsmin,
        instance,
        csvi_v0,
        csuuidi,
    };
    dev_info!(
        pf.as_ref(),
        "migration controller nvme{}: CNTLID {}, OACS {:#x} (HMLMS {}), MDTS {}, MPSMIN {}, state formats: v0 CSVI {}, vendor CSUUIDI {}\n",
        instance,
        id.cntlid,
        id.oacs,
        if id.hmlms() { "yes" } else { "no" },
        MdtsFmt(caps.mdts),
        caps.mpsmin,
        caps.csvi_v0.unwrap_or(0),
        caps.csuuidi.unwrap_or(0)
    );
    Arc::pin_init(
        pin_init!(PfController {
            pdev: pf.into(),
            caps,
            gate <- Gate::new(ctrl),
        }),
        GFP_KERNEL,
    )
}

/// Formats an MDTS in bytes, or "no limit".
pub(crate) struct MdtsFmt(pub(crate) Option<u64>);

impl kernel::fmt::Display for MdtsFmt {
    fn fmt(&self, f: &mut kernel::fmt::Formatter<'_>) -> kernel::fmt::Result {
        match self.0 {
            Some(b) => write!(f, "{} bytes", b),
            None => f.write_str("no limit"),
        }
    }
}

/// A VF's use of its PF's migration controller; dropping it releases the
/// registry slot.
pub(crate) struct PfHandle(Arc<PfController>);

impl core::ops::Deref for PfHandle {
    type Target = PfController;
    fn deref(&self) -> &PfController {
        &self.0
    }
}

impl PfHandle {
    /// A reference to the controller for one operation (not a registry
    /// user: the handle it came from keeps the slot).
    pub(crate) fn arc(&self) -> Arc<PfController> {
        self.0.clone()
    }
}

impl Drop for PfHandle {
    fn drop(&mut self) {
        put(&self.0);
    }
}

/// Returns the migration controller of `vf`'s PF, discovering it on first
/// use.
pub(crate) fn get(vf_raw: *mut bindings::pci_dev) -> Result<PfHandle> {
    // SAFETY: `vf_raw` is the VF being probed, a live device.
    let pf_raw = unsafe { sys::nvp_pci_physfn(vf_raw) };
    // SAFETY: The PF of a live VF is live; its `dev` is a valid device.
    let pf_dev = unsafe { device::Device::from_raw(&raw mut (*pf_raw).dev) };
    let pf = <&pci::Device>::try_from(pf_dev)?;
    let key = pf_raw as usize;

    let mut reg = PF_REGISTRY.lock();
    if let Some(e) = reg.iter_mut().find(|e| e.key == key && !e.ctl.fenced()) {
        e.users += 1;
        return Ok(PfHandle(e.ctl.clone()));
    }
    // A fenced entry for the same PF (unbound and rebound) is replaced.
    reg.retain(|e| e.key != key);
    let ctl = discover(pf, pf_raw)?;
    reg.push(
        RegEntry {
            key,
            ctl: ctl.clone(),
            users: 1,
        },
        GFP_KERNEL,
    )?;
    Ok(PfHandle(ctl))
}

/// Releases a controller returned by [`get`]; the last user removes it from
/// the registry.
fn put(ctl: &Arc<PfController>) {
    let mut reg = PF_REGISTRY.lock();
    if let Some(i) = reg.iter().position(|e| Arc::ptr_eq(&e.ctl, ctl)) {
        reg[i].users -= 1;
        if reg[i].users == 0 {
            // `i` is in range: found just above.
            let _ = reg.remove(i);
        }
    }
}

/// Fences the controller of the PF at `pf_raw`, if any (the PF is being
/// unbound from nvme-pci).
fn fence_pf(pf_raw: usize, why: &str) {
    let mut reg = PF_REGISTRY.lock();
    for e in reg.iter().filter(|e| e.key == pf_raw) {
        e.ctl.fence(why);
    }
    // Fenced controllers stay alive through the VFs' references; the
    // registry forgets them so a rebound PF is discovered afresh.
    reg.retain(|e| e.key != pf_raw);
}

/// The PCI bus notifier that fences a PF's controller before nvme-pci's
/// remove runs.
///
/// # Safety
///
/// Called by the notifier chain of `pci_bus_type` with `data` a `struct
/// device *` on the PCI bus.
unsafe extern "C" fn bus_notify(
    _nb: *mut bindings::notifier_block,
    action: c_ulong,
    data: *mut c_void,
) -> c_int {
    if action == bindings::bus_notifier_event_BUS_NOTIFY_UNBIND_DRIVER as c_ulong {
        let dev = data.cast::<bindings::device>();
        // CAST: `dev` is embedded in a `struct pci_dev` (PCI bus notifier).
        let pdev = kernel::container_of!(dev, bindings::pci_dev, dev);
        fence_pf(pdev as usize, "PF driver unbinding");
    }
    bindings::NOTIFY_DONE as c_int
}

/// The registered bus notifier.
#[pin_data(PinnedDrop)]
pub(crate) struct PfWatch {
    #[pin]
    nb: kernel::types::Opaque<bindings::notifier_block>,
}

// SAFETY: After registration the notifier block is only touched by the
// notifier chain, under its own lock.
unsafe impl Sync for PfWatch {}
// SAFETY: As above; it is not tied to the registering thread.
unsafe impl Send for PfWatch {}

impl PfWatch {
    /// Registers the PCI bus notifier.
    pub(crate) fn new() -> impl PinInit<Self, Error> {
        try_pin_init!(Self {
            nb <- kernel::types::Opaque::try_ffi_init(|p: *mut bindings::notifier_block| {
                // SAFETY: `p` is valid, pinned storage for the notifier block,
                // which stays registered until `drop`.
                unsafe {
                    p.write(bindings::notifier_block {
                        notifier_call: Some(bus_notify),
                        next: core::ptr::null_mut(),
                        priority: 0,
                    });
                    to_result(bindings::bus_register_notifier(&raw const bindings::pci_bus_type, p))
                }
            }),
        })
    }
}

#[pinned_drop]
impl PinnedDrop for PfWatch {
    fn drop(self: Pin<&mut Self>) {
        // SAFETY: Registered in `new`.
        unsafe {
            bindings::bus_unregister_notifier(&raw const bindings::pci_bus_type, self.nb.get())
        };
    }
}

#[cfg(nvp_kunit)]
#[kunit_tests(nvme_vfio_pci_pf)]
mod tests {
    use super::*;
    use kernel::sync::atomic::{Atomic, Relaxed};

    static DROPS: Atomic<u32> = Atomic::new(0);

    struct Counted(u32);
    impl Drop for Counted {
        fn drop(&mut self) {
            DROPS.fetch_add(1, Relaxed);
        }
    }

    #[test]
    fn gate_fences_once() -> Result {
        DROPS.store(0, Relaxed);
        let g = KBox::pin_init(Gate::new(Counted(7)), GFP_KERNEL)?;
        assert_eq!(g.with(|c| c.0)?, 7);
        assert!(!g.fenced());
        let v = g.fence();
        assert!(v.is_some());
        assert!(g.fenced());
        assert_eq!(g.with(|c| c.0), Err(ENODEV));
        assert!(g.fence().is_none());
        assert_eq!(DROPS.load(Relaxed), 0);
        drop(v);
        assert_eq!(DROPS.load(Relaxed), 1);
        drop(g);
        assert_eq!(DROPS.load(Relaxed), 1);
        Ok(())
    }

    #[test]
    fn cmd_error_maps_to_errno() {
        assert_eq!(Error::from(CmdError::Nvme(Status(0x4002))), EIO);
        assert_eq!(Error::from(CmdError::Errno(ENODEV)), ENODEV);
        assert_eq!(CmdError::from(EINTR), CmdError::Errno(EINTR));
    }

    #[test]
    fn secondary_list_in_kernel_memory() -> Result {
        // The lookup runs on a KVec page as at probe time.
        let mut buf = KVec::from_elem(0u8, identify::IDENTIFY_LEN, GFP_KERNEL)?;
        let r = identify::find_secondary(
            0,
            2,
            &mut buf,
            |_, b| {
                b[0] = 2;
                for i in 0..2usize {
                    let e = &mut b[32 + i * 32..64 + i * 32];
                    e[0] = (i + 1) as u8;
                    e[4] = 1;
                    e[8] = (i + 1) as u8;
                }
                Ok::<(), Error>(())
            },
            |_| EPROTO,
        )?;
        assert_eq!(r.map(|e| e.scid), Some(2));
        Ok(())
    }
}
