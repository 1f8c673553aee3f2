// SPDX-License-Identifier: GPL-2.0

//! Replays every file under `tools/fuzz/regressions/<target>/` through the
//! entry point of that fuzz target, so an input that once crashed a target
//! (saved there by `tools/fuzz/run-fuzz.sh`) stays fixed. A missing or
//! empty directory passes. The `seed-*` files are the generator's seeds
//! (`examples/fuzz-seeds.rs`): they must still be what it writes, and the
//! stream seeds must be accepted, which shows the replay reaches deep.

use std::{
    fs,
    path::{Path, PathBuf},
};

use nvp_proto::fuzz;

/// The fuzz targets (the `[[bin]]`s of `tools/fuzz/Cargo.toml`).
const TARGETS: &[&str] = &["stream", "tp4159"];

/// The entry point of a fuzz target (what its `fuzz_targets/` file calls).
fn entry(target: &str) -> Option<fn(&[u8])> {
    match target {
        "stream" => Some(fuzz::stream),
        "tp4159" => Some(fuzz::tp4159),
        _ => None,
    }
}

fn regressions() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/regressions")
}

/// The regular files of `dir`, sorted; none if it does not exist.
fn files(dir: &Path) -> Vec<PathBuf> {
    let Ok(rd) = fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut v: Vec<PathBuf> = rd
        .map(|e| e.expect("readable directory entry").path())
        .filter(|p| p.is_file())
        .collect();
    v.sort();
    v
}

fn replay(target: &str) -> usize {
    let entry = entry(target).expect("a known target");
    let list = files(&regressions().join(target));
    for p in &list {
        let data = fs::read(p).expect("readable regression input");
        // Printed so that a failing replay names its file.
        eprintln!("replay {}: {} ({} bytes)", target, p.display(), data.len());
        entry(&data);
    }
    list.len()
}

#[test]
fn replay_stream() {
    let n = replay("stream");
    eprintln!("stream: {} inputs replayed", n);
}

#[test]
fn replay_tp4159() {
    let n = replay("tp4159");
    eprintln!("tp4159: {} inputs replayed", n);
}

/// A target or a directory of a target this test does not know would
/// never be replayed: refuse it.
#[test]
fn every_target_is_replayed() {
    let targets = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/fuzz_targets");
    for p in files(&targets) {
        let stem = p
            .file_stem()
            .unwrap_or_default()
            .to_string_lossy()
            .into_owned();
        assert!(
            TARGETS.contains(&stem.as_str()) && entry(&stem).is_some(),
            "fuzz target {} has no replay entry in tests/fuzz_regressions.rs",
            p.display()
        );
    }
    let Ok(rd) = fs::read_dir(regressions()) else {
        return;
    };
    for e in rd {
        let p = e.expect("readable directory entry").path();
        if p.is_dir() {
            let name = p
                .file_name()
                .unwrap_or_default()
                .to_string_lossy()
                .into_owned();
            assert!(
                TARGETS.contains(&name.as_str()) && entry(&name).is_some(),
                "{} has no replay entry in tests/fuzz_regressions.rs",
                p.display()
            );
        }
    }
}

/// Every committed `seed-*` file is what the generator writes now (a
/// format change must refresh them), and the stream seeds are accepted.
#[test]
fn committed_seeds_are_current() {
    let seeds = fuzz::seeds();
    for target in TARGETS {
        for p in files(&regressions().join(target)) {
            let name = p
                .file_name()
                .unwrap_or_default()
                .to_string_lossy()
                .into_owned();
            if !name.starts_with("seed-") {
                continue;
            }
            let on_disk = fs::read(&p).expect("readable seed");
            assert!(
                seeds
                    .iter()
                    .any(|(t, n, b)| t == target && *n == name && *b == on_disk),
                "{} is stale or unknown: run `cargo run --example fuzz-seeds -- ../fuzz/regressions` in tools/nvp-proto",
                p.display()
            );
            if *target == "stream" {
                assert!(fuzz::parse_stream(&on_disk), "{} refused", p.display());
            }
        }
    }
}
