// SPDX-License-Identifier: GPL-2.0

//! Writes the fuzz seed inputs (valid migration streams and TP4159 state
//! structures, `nvp_proto::fuzz::seeds`) as `DIR/<target>/<name>`.
//!
//! `cargo run --example fuzz-seeds -- ../fuzz/regressions` refreshes the
//! committed seeds after a format change.

use std::{env, fs, path::PathBuf, process::ExitCode};

fn main() -> ExitCode {
    let Some(dir) = env::args_os().nth(1).map(PathBuf::from) else {
        eprintln!("usage: fuzz-seeds DIR");
        return ExitCode::from(2);
    };
    for (target, name, bytes) in nvp_proto::fuzz::seeds() {
        let d = dir.join(target);
        let p = d.join(&name);
        if let Err(e) = fs::create_dir_all(&d).and_then(|()| fs::write(&p, &bytes)) {
            eprintln!("fuzz-seeds: {}: {}", p.display(), e);
            return ExitCode::FAILURE;
        }
        println!("{} ({} bytes)", p.display(), bytes.len());
    }
    ExitCode::SUCCESS
}
