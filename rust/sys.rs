// SPDX-License-Identifier: GPL-2.0

//! Raw bindings generated at build time from `include/nvp_bindings.h`:
//! `vfio_pci_core`, the VFIO device/migration ops, and the C glue's ABI.
//!
//! Types that `kernel::bindings` already has (`pci_dev`, `file`, ...) are
//! reused through a glob import, so the two sets unify. Only this module and
//! the files that own the FFI boundary (`vfio.rs`, `pf.rs`) touch it.

#[allow(
    warnings,
    missing_docs,
    unreachable_pub,
    non_camel_case_types,
    non_upper_case_globals,
    non_snake_case,
    improper_ctypes,
    unsafe_op_in_unsafe_fn,
    dead_code,
    clippy::all,
    clippy::undocumented_unsafe_blocks,
    clippy::ptr_as_ptr,
    clippy::ref_as_ptr,
    clippy::as_underscore,
    clippy::cast_lossless,
    clippy::ptr_cast_constness
)]
mod generated {
    include!("nvp_bindings.rs");
}

pub(crate) use generated::*;

/// A static C table (ops vtable, `file_operations`, ...) made shareable.
#[repr(transparent)]
pub(crate) struct AssertSync<T>(pub(crate) T);

// SAFETY: The wrapped tables are only read after initialisation, by C code
// that treats them as read-only.
unsafe impl<T> Sync for AssertSync<T> {}
