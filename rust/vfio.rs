// SPDX-License-Identifier: GPL-2.0

//! The VFIO side: the `pci_driver` that binds NVMe VFs (only through
//! `driver_override`), and the `vfio_pci_core` device that serves them to
//! userspace exactly as vfio-pci does.
//!
//! `kernel::pci::Adapter` cannot host a vfio-pci variant driver (drvdata
//! must point to the `vfio_pci_core_device`, `driver_managed_dma` and the
//! error handlers must be set, and vfio-pci-core writes `driver->pm`), so the
//! driver is a raw `struct pci_driver` in writable, pinned module memory.
//!
//! Locking: [`NvmeVfDevice`] is created in probe and freed by the vfio core's
//! `release`; its [`VfState`] is immutable after probe. Concurrency inside a
//! device belongs to vfio-pci-core; PF access goes through
//! [`crate::pf::PfController`]'s own lock. The migration ops and the dirty
//! tracking (log) ops all run under the VF's migration mutex
//! ([`with_ctx`]), which VFIO does not serialise for us.

use core::mem::size_of;

use kernel::{
    bindings,
    device,
    error::{
        from_err_ptr,
        to_result, //
    },
    new_mutex,
    new_spinlock,
    prelude::*,
    str::as_char_ptr_in_const_context,
    sync::{
        Mutex,
        MutexGuard,
        SpinLock, //
    },
    types::Opaque, //
};

use crate::{
    dirty,
    mig::{
        self,
        MigState,
        VfCtx, //
    },
    pf::{
        self,
        MdtsFmt,
        PfHandle, //
    },
    sys::{
        self,
        AssertSync, //
    },
};

/// What probe learnt about a VF.
struct VfInfo {
    /// The VF's number on its PF (1-based).
    vfn: u16,
    /// The VF's secondary controller ID (its CNTLID), as the PF reports it.
    scid: u16,
    /// VQ resources assigned to the secondary controller.
    nvq: u16,
    /// VI resources assigned to the secondary controller.
    nvi: u16,
}

/// Per-VF state, owned by the [`NvmeVfDevice`] it hangs off. `info` is
/// immutable after probe; `mig` is the state mutex of the VFIO migration
/// state machine and also guards the VF's handle on its PF.
///
/// `reset_deferred` is the deferred-reset flag (the pattern of the in-tree
/// variant drivers): `reset_done` runs under vfio-pci-core's `memory_lock`,
/// which nests inside `mmap_lock`, and `mmap_lock` nests inside `mig` (a
/// migration file's read copies to user memory under the file's mutex,
/// which `mig`'s holder takes). So `reset_done` only sets the flag and
/// takes `mig` with a trylock; whoever releases `mig` performs the reset
/// first ([`unlock`]).
#[pin_data]
pub(crate) struct VfState {
    info: VfInfo,
    #[pin]
    mig: Mutex<MigState>,
    #[pin]
    reset_deferred: SpinLock<bool>,
}

/// The vfio device of one VF.
///
/// # Invariants
///
/// `core` is first, so a `*mut vfio_device` from the vfio core is a
/// `*mut NvmeVfDevice`; `state` is null or came from `KBox::into_raw` of a
/// pinned box, is never moved, and is freed only in `release`.
#[repr(C)]
pub(crate) struct NvmeVfDevice {
    core: sys::vfio_pci_core_device,
    state: *mut VfState,
}

/// The vfio device ops: vfio-pci-core's, plus our init/release/open.
static DEV_OPS: AssertSync<sys::vfio_device_ops> = AssertSync(sys::vfio_device_ops {
    name: as_char_ptr_in_const_context(c"nvme-vfio-pci").cast_mut(),
    init: Some(sys::vfio_pci_core_init_dev),
    release: Some(release),
    open_device: Some(open_device),
    close_device: Some(close_device),
    ioctl: Some(sys::vfio_pci_core_ioctl),
    get_region_info_caps: Some(sys::vfio_pci_ioctl_get_region_info),
    device_feature: Some(sys::vfio_pci_core_ioctl_feature),
    read: Some(sys::vfio_pci_core_read),
    write: Some(sys::vfio_pci_core_write),
    mmap: Some(sys::vfio_pci_core_mmap),
    request: Some(sys::vfio_pci_core_request),
    match_: Some(sys::vfio_pci_core_match),
    match_token_uuid: Some(sys::vfio_pci_core_match_token_uuid),
    bind_iommufd: Some(sys::vfio_iommufd_physical_bind),
    unbind_iommufd: Some(sys::vfio_iommufd_physical_unbind),
    attach_ioas: Some(sys::vfio_iommufd_physical_attach_ioas),
    detach_ioas: Some(sys::vfio_iommufd_physical_detach_ioas),
    pasid_attach_ioas: Some(sys::vfio_iommufd_physical_pasid_attach_ioas),
    pasid_detach_ioas: Some(sys::vfio_iommufd_physical_pasid_detach_ioas),
    dma_unmap: None,
});

/// The migration ops, set on devices whose PF supports TP4159.
static MIG_OPS: AssertSync<sys::vfio_migration_ops> = AssertSync(sys::vfio_migration_ops {
    migration_set_state: Some(mig_set_state),
    migration_get_state: Some(mig_get_state),
    migration_get_data_size: Some(mig_get_data_size),
});

/// The dirty-tracking ops, set on devices whose PF offers a tracking format
/// (and migration).
static LOG_OPS: AssertSync<sys::vfio_log_ops> = AssertSync(sys::vfio_log_ops {
    log_start: Some(log_start),
    log_stop: Some(log_stop),
    log_read_and_clear: Some(log_read_and_clear),
});

/// The PCI error handlers: vfio-pci-core's, with our `reset_done`.
static ERR_HANDLERS: AssertSync<bindings::pci_error_handlers> =
    AssertSync(bindings::pci_error_handlers {
        error_detected: Some(sys::vfio_pci_core_aer_err_detected),
        reset_done: Some(reset_done),
        ..pin_init::zeroed()
    });

/// Our device and its state from the vfio core's device.
///
/// # Safety
///
/// `vdev` must be a device created by [`probe`] and not yet released.
unsafe fn ours<'a>(vdev: *mut sys::vfio_device) -> (*mut NvmeVfDevice, &'a VfState) {
    let nvf = vdev.cast::<NvmeVfDevice>();
    // SAFETY: By the type invariant of `NvmeVfDevice`, `state` is valid
    // from probe to release, and the caller guarantees we are in between.
    (nvf, unsafe { &*(*nvf).state })
}

/// The VF's PCI function.
///
/// # Safety
///
/// As for [`ours`].
unsafe fn pdev_of(vdev: *mut sys::vfio_device) -> *mut bindings::pci_dev {
    // SAFETY: `vdev` is our core device (caller); its `pdev` is the bound VF.
    unsafe { (*vdev.cast::<sys::vfio_pci_core_device>()).pdev }
}

/// Runs `f` with the migration mutex held and the state machine's view of
/// the VF, whose PF controller is the current one (see
/// [`mig::current_pf`]).
///
/// # Safety
///
/// As for [`ours`].
unsafe fn with_ctx<R>(
    vdev: *mut sys::vfio_device,
    st: &VfState,
    f: impl FnOnce(&VfCtx<'_>, &mut MigState) -> R,
) -> R {
    let mut m = st.mig.lock();
    // SAFETY: By the function's safety requirement.
    let r = unsafe { run_locked(vdev, st, &mut m, f) };
    // SAFETY: As above.
    unsafe { unlock(vdev, st, m) };
    r
}

/// Runs `f` on the VF's context; the caller holds the migration mutex.
///
/// # Safety
///
/// As for [`ours`].
unsafe fn run_locked<R>(
    vdev: *mut sys::vfio_device,
    st: &VfState,
    m: &mut MigState,
    f: impl FnOnce(&VfCtx<'_>, &mut MigState) -> R,
) -> R {
    // SAFETY: By the function's safety requirement.
    let pdev = unsafe { pdev_of(vdev) };
    // SAFETY: The VF is live while its vfio device exists.
    let dev = unsafe { devof(pdev) };
    let pf = mig::current_pf(dev, pdev, m);
    let cx = VfCtx {
        dev,
        vdev,
        pdev,
        pf: &pf,
        vfn: st.info.vfn,
        scid: st.info.scid,
        nvq: st.info.nvq,
        nvi: st.info.nvi,
    };
    f(&cx, m)
}

/// Releases the migration mutex, first carrying out a reset that
/// `reset_done` deferred while the mutex was held.
///
/// # Safety
///
/// As for [`ours`].
unsafe fn unlock(vdev: *mut sys::vfio_device, st: &VfState, mut m: MutexGuard<'_, MigState>) {
    loop {
        let mut deferred = st.reset_deferred.lock();
        if !*deferred {
            // The mutex goes while the flag's lock is held, so a
            // `reset_done` that fails its trylock now sees the flag read.
            drop(m);
            drop(deferred);
            return;
        }
        *deferred = false;
        drop(deferred);
        // SAFETY: By the function's safety requirement.
        unsafe { run_locked(vdev, st, &mut m, mig::reset) };
    }
}

/// `migration_set_state`.
///
/// # Safety
///
/// Called by the vfio core on a device created by [`probe`].
unsafe extern "C" fn mig_set_state(vdev: *mut sys::vfio_device, new: u32) -> *mut bindings::file {
    // SAFETY: By the function's safety requirement.
    let (_, st) = unsafe { ours(vdev) };
    // SAFETY: As above.
    match unsafe { with_ctx(vdev, st, |cx, m| mig::set_state(cx, m, new)) } {
        Ok(f) => f,
        Err(e) => e.to_ptr(),
    }
}

/// `migration_get_state`.
///
/// # Safety
///
/// Called by the vfio core on a device created by [`probe`], with `cur`
/// valid for writing.
unsafe extern "C" fn mig_get_state(vdev: *mut sys::vfio_device, cur: *mut u32) -> c_int {
    // SAFETY: By the function's safety requirement.
    let (_, st) = unsafe { ours(vdev) };
    let m = st.mig.lock();
    // SAFETY: `cur` is valid for writing (caller).
    unsafe { *cur = m.state };
    // SAFETY: As above.
    unsafe { unlock(vdev, st, m) };
    0
}

/// `migration_get_data_size`.
///
/// # Safety
///
/// Called by the vfio core on a device created by [`probe`], with `len`
/// valid for writing.
unsafe extern "C" fn mig_get_data_size(vdev: *mut sys::vfio_device, len: *mut c_ulong) -> c_int {
    // SAFETY: By the function's safety requirement.
    let (_, st) = unsafe { ours(vdev) };
    // SAFETY: As above.
    match unsafe { with_ctx(vdev, st, |cx, _| mig::data_size(cx)) } {
        Ok(n) => {
            // SAFETY: `len` is valid for writing (caller).
            unsafe { *len = n as c_ulong };
            0
        }
        Err(e) => e.to_errno(),
    }
}

/// `log_start`: start device dirty tracking of the ranges in `ranges`; the
/// granularity used is written back to `page_size`.
///
/// # Safety
///
/// Called by the vfio core on a device created by [`probe`], with `ranges`
/// an interval tree of `nnodes` nodes and `page_size` valid, both for the
/// duration of the call.
unsafe extern "C" fn log_start(
    vdev: *mut sys::vfio_device,
    ranges: *mut bindings::rb_root_cached,
    nnodes: u32,
    page_size: *mut u64,
) -> c_int {
    // SAFETY: By the function's safety requirement.
    let (_, st) = unsafe { ours(vdev) };
    // SAFETY: `page_size` is valid for reads and writes (caller).
    let ps = unsafe { &mut *page_size };
    let f = |cx: &VfCtx<'_>, m: &mut MigState| {
        // SAFETY: `ranges` is VFIO's tree of `nnodes` nodes (caller).
        unsafe { dirty::start(cx, m, ranges, nnodes, ps) }
    };
    // SAFETY: As above.
    let r = unsafe { with_ctx(vdev, st, f) };
    match r {
        Ok(()) => 0,
        Err(e) => e.to_errno(),
    }
}

/// `log_stop`: stop device dirty tracking (succeeds when not tracking).
///
/// # Safety
///
/// Called by the vfio core on a device created by [`probe`].
unsafe extern "C" fn log_stop(vdev: *mut sys::vfio_device) -> c_int {
    // SAFETY: By the function's safety requirement.
    let (_, st) = unsafe { ours(vdev) };
    // SAFETY: As above.
    unsafe { with_ctx(vdev, st, dirty::stop) };
    0
}

/// `log_read_and_clear`: report and clear the dirty pages of `iova..iova +
/// length` into `dirty`.
///
/// # Safety
///
/// Called by the vfio core (from `iova_bitmap_for_each()`) on a device
/// created by [`probe`], with `dirty` the bitmap whose current window
/// covers the range.
unsafe extern "C" fn log_read_and_clear(
    vdev: *mut sys::vfio_device,
    iova: c_ulong,
    length: c_ulong,
    bitmap: *mut sys::iova_bitmap,
) -> c_int {
    // SAFETY: By the function's safety requirement.
    let (_, st) = unsafe { ours(vdev) };
    let f = |cx: &VfCtx<'_>, m: &mut MigState| {
        // SAFETY: `bitmap` is VFIO's for this range (caller).
        unsafe { dirty::read_and_clear(cx, m, iova as u64, length as u64, bitmap) }
    };
    // SAFETY: As above.
    let r = unsafe { with_ctx(vdev, st, f) };
    match r {
        Ok(()) => 0,
        Err(e) => e.to_errno(),
    }
}

/// `reset_done`: an FLR or VFIO_DEVICE_RESET returns the device to
/// RUNNING and kills the migration files, at once or, if the migration
/// mutex is held, when its holder releases it (see [`VfState`]).
///
/// # Safety
///
/// Called by the PCI core on a device bound by [`probe`].
unsafe extern "C" fn reset_done(pdev: *mut bindings::pci_dev) {
    // SAFETY: drvdata is our core device while bound.
    let core = unsafe { (*pdev).dev.driver_data.cast::<sys::vfio_pci_core_device>() };
    if core.is_null() {
        return;
    }
    // SAFETY: `core` is the first field of our device, which lives while
    // the driver is bound.
    let vdev = unsafe { &raw mut (*core).vdev };
    // SAFETY: As above.
    let (_, st) = unsafe { ours(vdev) };
    let mut deferred = st.reset_deferred.lock();
    *deferred = true;
    let Some(m) = st.mig.try_lock() else {
        // The holder resets on its way out.
        return;
    };
    drop(deferred);
    // SAFETY: As above.
    unsafe { unlock(vdev, st, m) };
}

/// `close_device`: dirty tracking stops and the migration state goes back
/// to RUNNING first.
///
/// # Safety
///
/// Called by the vfio core on a device created by [`probe`].
unsafe extern "C" fn close_device(vdev: *mut sys::vfio_device) {
    // SAFETY: By the function's safety requirement.
    let (_, st) = unsafe { ours(vdev) };
    // SAFETY: As above.
    unsafe {
        with_ctx(vdev, st, |cx, m| {
            dirty::stop(cx, m);
            mig::reset(cx, m);
        })
    };
    // SAFETY: As above.
    unsafe { sys::vfio_pci_core_close_device(vdev) };
}

/// `open_device`: enable the PCI function as vfio-pci does.
///
/// # Safety
///
/// Called by the vfio core with a device created by [`probe`].
unsafe extern "C" fn open_device(vdev: *mut sys::vfio_device) -> c_int {
    let core = vdev.cast::<sys::vfio_pci_core_device>();
    // SAFETY: `core` is our `vfio_pci_core_device` (type invariant of
    // `NvmeVfDevice`); the vfio core serialises open/close.
    let ret = unsafe { sys::vfio_pci_core_enable(core) };
    if ret != 0 {
        return ret;
    }
    // SAFETY: As above; enable succeeded.
    unsafe { sys::vfio_pci_core_finish_enable(core) };
    0
}

/// `release`: free our state, then vfio-pci-core's.
///
/// # Safety
///
/// Called once by the vfio core when the last reference to a device created
/// by [`probe`] goes.
unsafe extern "C" fn release(vdev: *mut sys::vfio_device) {
    let nvf = vdev.cast::<NvmeVfDevice>();
    // SAFETY: `nvf` is ours (type invariant); `state` is null or a `KBox`
    // raw pointer not yet freed, and this is the only place it is freed.
    unsafe {
        let st = (*nvf).state;
        if !st.is_null() {
            (*nvf).state = core::ptr::null_mut();
            drop(Pin::new_unchecked(KBox::from_raw(st)));
        }
        sys::vfio_pci_core_release_dev(vdev);
    }
}

/// The device of a raw `pci_dev`, for logging.
///
/// # Safety
///
/// `pdev` must be a live PCI device for the returned lifetime.
unsafe fn devof<'a>(pdev: *mut bindings::pci_dev) -> &'a device::Device {
    // SAFETY: By the function's safety requirement.
    unsafe { device::Device::from_raw(&raw mut (*pdev).dev) }
}

/// Checks that `pdev` is a VF we can serve and finds its secondary
/// controller on the PF.
fn admit(pdev: *mut bindings::pci_dev) -> Result<(VfInfo, PfHandle)> {
    // SAFETY: `pdev` is the device being probed.
    let dev = unsafe { devof(pdev) };
    // SAFETY: As above.
    if !unsafe { sys::nvp_pci_is_virtfn(pdev) } {
        dev_err!(
            dev,
            "not an SR-IOV virtual function: refusing (this driver serves NVMe VFs only)\n"
        );
        return Err(ENODEV);
    }
    // SAFETY: `pdev` is a VF.
    let vf_id = unsafe { bindings::pci_iov_vf_id(pdev) };
    let vfn = u16::try_from(vf_id + 1).map_err(|_| {
        dev_err!(dev, "cannot determine the VF number ({})\n", vf_id);
        ENODEV
    })?;
    let ctl = pf::get(pdev).inspect_err(|e| {
        dev_err!(
            dev,
            "PF is not a live nvme-pci controller ({:?}): refusing\n",
            e
        );
    })?;
    let sc = match ctl.secondary_of_vf(vfn) {
        Ok(Some(sc)) => sc,
        Ok(None) => {
            dev_err!(
                dev,
                "VF {} has no secondary controller in the PF's Secondary Controller List\n",
                vfn
            );
            return Err(ENODEV);
        }
        Err(e) => {
            dev_err!(
                dev,
                "reading the PF's Secondary Controller List failed ({:?})\n",
                e
            );
            return Err(e);
        }
    };
    let caps = ctl.caps();
    dev_info!(
        dev,
        "bound: VF {}, secondary controller ID {}, PF {} (nvme{} CNTLID {}, HMLMS {}, NVPT tracking {}, MDTS {}, {}, VQ {}, VI {})\n",
        vfn,
        sc.scid,
        ctl.pdev().as_ref().name(),
        caps.instance,
        caps.id.cntlid,
        if caps.id.hmlms() { "yes" } else { "no" },
        if caps.id.nvpt.is_some() { "yes" } else { "no" },
        MdtsFmt(caps.mdts),
        if sc.online() { "online" } else { "offline" },
        sc.nvq,
        sc.nvi
    );
    Ok((
        VfInfo {
            vfn,
            scid: sc.scid,
            nvq: sc.nvq,
            nvi: sc.nvi,
        },
        ctl,
    ))
}

/// `probe`: admit the VF, then register a vfio-pci-core device for it.
///
/// # Safety
///
/// Called by the PCI core for a device matching [`PCI_IDS`].
unsafe extern "C" fn probe(
    pdev: *mut bindings::pci_dev,
    _id: *const bindings::pci_device_id,
) -> c_int {
    let (info, pf) = match admit(pdev) {
        Ok(i) => i,
        Err(e) => return e.to_errno(),
    };
    let migrate = mig::supported(&pf);
    // Dirty tracking only serves migration.
    let track = migrate && dirty::supported(&pf);
    let st = match KBox::pin_init(
        pin_init!(VfState {
            info,
            mig <- new_mutex!(MigState::new(pf)),
            reset_deferred <- new_spinlock!(false),
        }),
        GFP_KERNEL,
    ) {
        Ok(b) => b,
        Err(e) => return e.to_errno(),
    };
    // SAFETY: `DEV_OPS` is static; `pdev` is being probed.
    let vdev = unsafe {
        sys::_vfio_alloc_device(size_of::<NvmeVfDevice>(), &raw mut (*pdev).dev, &DEV_OPS.0)
    };
    let vdev = match from_err_ptr(vdev) {
        Ok(v) => v,
        Err(e) => return e.to_errno(),
    };
    let nvf = vdev.cast::<NvmeVfDevice>();
    // SAFETY: `nvf` was just allocated with our size, `core.vdev` first
    // (INVARIANT: `state` now holds a `KBox` raw pointer, freed in
    // `release`); drvdata must point to the core device, as vfio-pci-core
    // requires.
    unsafe {
        (*nvf).state = KBox::into_raw(Pin::into_inner_unchecked(st));
        if migrate {
            (*vdev).mig_ops = &MIG_OPS.0;
            (*vdev).migration_flags = sys::VFIO_MIGRATION_STOP_COPY | sys::VFIO_MIGRATION_P2P;
            if track {
                (*vdev).log_ops = &LOG_OPS.0;
            }
        }
        (*pdev).dev.driver_data = (&raw mut (*nvf).core).cast();
        let ret = sys::vfio_pci_core_register_device(&raw mut (*nvf).core);
        if ret != 0 {
            (*pdev).dev.driver_data = core::ptr::null_mut();
            bindings::put_device(&raw mut (*vdev).device);
            return ret;
        }
    }
    0
}

/// `remove`: unregister and drop our reference; `release` frees the rest.
///
/// # Safety
///
/// Called by the PCI core for a device bound by [`probe`].
unsafe extern "C" fn remove(pdev: *mut bindings::pci_dev) {
    // SAFETY: drvdata was set in `probe` to the core device, which is the
    // first field of our `NvmeVfDevice`.
    unsafe {
        let core = (*pdev).dev.driver_data.cast::<sys::vfio_pci_core_device>();
        sys::vfio_pci_core_unregister_device(core);
        bindings::put_device(&raw mut (*core).vdev.device);
    }
}

/// NVMe functions (class 01:08:02, any vendor), matched only through
/// `driver_override`: modpost turns the VFIO flag into `vfio_pci:` aliases.
#[repr(C)]
pub(crate) struct IdTable([bindings::pci_device_id; 2]);

/// The PCI ID table, exported under the name modpost looks for.
#[export_name = "__mod_device_table__nvp__kmod_nvme_vfio_pci__pci__nvp_pci_ids"]
pub(crate) static PCI_IDS: IdTable = IdTable([
    bindings::pci_device_id {
        vendor: bindings::PCI_ANY_ID as u32,
        device: bindings::PCI_ANY_ID as u32,
        subvendor: bindings::PCI_ANY_ID as u32,
        subdevice: bindings::PCI_ANY_ID as u32,
        class: bindings::PCI_CLASS_STORAGE_EXPRESS,
        class_mask: 0xff_ffff,
        driver_data: 0,
        override_only: bindings::PCI_ID_F_VFIO_DRIVER_OVERRIDE,
    },
    bindings::pci_device_id {
        vendor: 0,
        device: 0,
        subvendor: 0,
        subdevice: 0,
        class: 0,
        class_mask: 0,
        driver_data: 0,
        override_only: 0,
    },
]);

/// The registered `pci_driver`.
#[pin_data(PinnedDrop)]
pub(crate) struct Driver {
    #[pin]
    drv: Opaque<bindings::pci_driver>,
}

// SAFETY: After registration the driver core owns the `pci_driver` and
// synchronises its own accesses; this module only unregisters it.
unsafe impl Sync for Driver {}
// SAFETY: As above; it is not tied to the registering thread.
unsafe impl Send for Driver {}

impl Driver {
    /// Registers the driver.
    pub(crate) fn new(module: &'static ThisModule) -> impl PinInit<Self, Error> {
        try_pin_init!(Self {
            drv <- Opaque::try_ffi_init(move |p: *mut bindings::pci_driver| {
                // SAFETY: `p` is pinned, writable storage that stays
                // registered until `drop`; the tables it points to are
                // static.
                unsafe {
                    p.write(bindings::pci_driver {
                        name: c"nvme_vfio_pci".as_char_ptr(),
                        id_table: PCI_IDS.0.as_ptr(),
                        probe: Some(probe),
                        remove: Some(remove),
                        err_handler: &ERR_HANDLERS.0,
                        driver_managed_dma: true,
                        ..pin_init::zeroed()
                    });
                    to_result(bindings::__pci_register_driver(p, module.as_ptr(), c"nvme_vfio_pci".as_char_ptr()))
                }
            }),
        })
    }
}

#[pinned_drop]
impl PinnedDrop for Driver {
    fn drop(self: Pin<&mut Self>) {
        // SAFETY: Registered in `new`.
        unsafe { bindings::pci_unregister_driver(self.drv.get()) };
    }
}
