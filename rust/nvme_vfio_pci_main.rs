// SPDX-License-Identifier: GPL-2.0

//! nvme_vfio_pci: a VFIO variant driver that live-migrates NVMe SR-IOV
//! virtual functions using NVMe Host Managed Live Migration (TP4159).
//!
//! A hypervisor binds a VF to this driver (through `driver_override`) and
//! hands it to a VM with QEMU's standard `vfio-pci` device. The VF is served
//! exactly as vfio-pci serves it; the driver reaches the VF's NVMe controller
//! through the PF, the *migration controller*, which stays driven by
//! nvme-pci.
//!
//! Layers (arrows go down only; see `Documentation/design.rst`):
//!
//! - [`vfio`]: the `pci_driver` and the `vfio_pci_core` device.
//! - [`mig`], [`migf`]: the VFIO migration state machine and its data file.
//! - [`dirty`]: device dirty-page tracking (`vfio_log_ops`) behind a
//!   tracking-format boundary.
//! - [`tp4159`]: TP4159 operations on a VF's controller, through its PF.
//! - [`pf`]: the migration controller: admin commands on the PF, serialised
//!   and fenced when the PF goes away, capability discovery.
//! - [`protocol`]: NVMe/TP4159 encoders and decoders, pure `core` code that
//!   a host crate (`tools/nvp-proto`) also builds for `cargo test`.
//! - [`sys`]: bindgen output for VFIO and the C glue (`rust/glue.c`).

use kernel::prelude::*;

mod dirty;
mod mig;
mod migf;
mod pf;
mod protocol;
mod sys;
mod tp4159;
mod vfio;

module! {
    type: NvmeVfioPci,
    name: "nvme_vfio_pci",
    authors: ["nvme-vfio-pci developers"],
    description: "VFIO variant driver for live migration of NVMe SR-IOV VFs (TP4159)",
    license: "GPL v2",
    imports_ns: ["NVME_TARGET_PASSTHRU", "IOMMUFD"],
}

/// The module. Initialised PF watch first, so no VF is bound before PFs can
/// be fenced; fields drop in declaration order, so the driver (and every
/// bound VF) goes before the PF watch, and the PF registry's memory last.
#[pin_data]
struct NvmeVfioPci {
    #[pin]
    driver: vfio::Driver,
    #[pin]
    pf_watch: pf::PfWatch,
    registry: pf::Registry,
}

impl kernel::InPlaceModule for NvmeVfioPci {
    fn init(module: &'static ThisModule) -> impl PinInit<Self, Error> {
        let registry = pf::Registry::init();
        try_pin_init!(Self {
            registry,
            pf_watch <- pf::PfWatch::new(),
            driver <- vfio::Driver::new(module),
        })
    }
}
