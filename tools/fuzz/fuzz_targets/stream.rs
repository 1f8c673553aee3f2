// SPDX-License-Identifier: GPL-2.0

//! libFuzzer target: the migration-stream parser as the resume path uses
//! it, and the Writer/parse round trip (`nvp_proto::fuzz::stream`).

#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    nvp_proto::fuzz::stream(data);
});
