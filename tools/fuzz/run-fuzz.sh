#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# Host fuzzing of the driver's pure protocol module (rust/protocol/) with
# libFuzzer through cargo-fuzz: builds the targets of tools/fuzz/, runs each
# for its share of SECONDS (default 60, total) and prints per target
#   fuzz: <target> <N> runs in <S> s, 0 crashes
# A crash (panic: a failed property or an out-of-bounds index) stops the
# target; its input is saved as tools/fuzz/regressions/<target>/crash-<sha1>
# (commit it: tools/nvp-proto's `cargo test` replays that directory) and
# the script exits 1.
#
# Usage: tools/fuzz/run-fuzz.sh [SECONDS]
# Env:   NVP_FUZZ_TARGETS  targets to run (default: every one in Cargo.toml)
#        NVP_FUZZ_ARGS     extra libFuzzer flags (e.g. -seed=1)
# Needs only stable Rust: RUSTC_BOOTSTRAP=1 lets it take the -Z flags
# cargo-fuzz passes. Installs cargo-fuzz into ~/.cargo/bin when missing.
# No sanitizer: the crate has no unsafe code; overflow checks and debug
# assertions are on, as in the kernel (CONFIG_RUST_OVERFLOW_CHECKS).

set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
total=${1:-60}
case $total in '' | *[!0-9]*) echo "usage: $0 [SECONDS]" >&2; exit 2 ;; esac

CARGO_FUZZ_VERSION=0.13.2
export PATH="$HOME/.cargo/bin:$PATH"
export RUSTC_BOOTSTRAP=1

if ! cargo fuzz --version 2>/dev/null | grep -q " $CARGO_FUZZ_VERSION\$"; then
	echo "fuzz: installing cargo-fuzz $CARGO_FUZZ_VERSION"
	cargo install --locked --version "$CARGO_FUZZ_VERSION" cargo-fuzz
fi

# shellcheck disable=SC2207
targets=(${NVP_FUZZ_TARGETS:-$(cargo fuzz list --fuzz-dir "$here")})
per=$((total / ${#targets[@]}))
[ "$per" -ge 1 ] || per=1
opts=(--fuzz-dir "$here" --sanitizer none --debug-assertions)

t0=$(date +%s)
cargo fuzz build "${opts[@]}"
echo "fuzz: build $(($(date +%s) - t0)) s"

rc=0
for t in "${targets[@]}"; do
	corpus=$here/corpus/$t        # working corpus (not committed)
	regr=$here/regressions/$t     # seeds and crash inputs (committed)
	mkdir -p "$corpus" "$regr"
	log=$here/target/fuzz-$t.log
	# shellcheck disable=SC2086
	if cargo fuzz run "${opts[@]}" "$t" "$corpus" "$regr" -- \
		-max_total_time="$per" -timeout=60 -artifact_prefix="$regr/" \
		${NVP_FUZZ_ARGS:-} >"$log" 2>&1; then
		done_line=$(grep -E '^Done [0-9]+ runs in [0-9]+ second' "$log" | tail -n 1 || true)
		if [ -z "$done_line" ]; then
			tail -n 20 "$log"
			echo "fuzz: $t: no 'Done' line from libFuzzer (log: $log)"
			rc=1
			continue
		fi
		runs=$(echo "$done_line" | awk '{print $2}')
		secs=$(echo "$done_line" | awk '{print $5}')
		echo "fuzz: $t $runs runs in $secs s, 0 crashes"
	else
		grep -E -A2 'panicked at|ERROR: libFuzzer' "$log" | head -n 12 || tail -n 20 "$log"
		new=$(sed -n 's/.*Test unit written to //p' "$log" | tail -n 1)
		echo "fuzz: $t CRASHED (log: $log); input saved as: ${new:-none}"
		echo "fuzz: replay with: cd tools/nvp-proto && cargo test --test fuzz_regressions"
		rc=1
	fi
done
exit $rc
