// SPDX-License-Identifier: GPL-2.0

//! libFuzzer target: the TP4159 Controller State, NVMe Controller State
//! and Supported Controller State Formats decoders, and the state encoder
//! round trip (`nvp_proto::fuzz::tp4159`).

#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    nvp_proto::fuzz::tp4159(data);
});
