// SPDX-License-Identifier: GPL-2.0

//! Host build of the driver's protocol module (`rust/protocol/`), so that
//! `cargo test` checks its encoders and decoders without a kernel or a VM.
//! The source is the module's own: nothing is copied.

#[path = "../../../rust/protocol/mod.rs"]
pub mod protocol;

/// Public entry points for the libFuzzer targets in `tools/fuzz/` and the
/// replay of their regression inputs; not an API.
#[doc(hidden)]
pub mod fuzz;
