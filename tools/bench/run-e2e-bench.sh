#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# `make bench-e2e`: QEMU-reported total time and downtime of the same L2 VM
# migrated with and without its NVMe VF (the VF's guest doing I/O), over
# several runs, min/median/max, and the RAM QEMU re-sends while the VM is
# stopped (the all-dirty fallback: the bed's IOMMU has no dirty tracking).
# Prints numbers; not a test.
#
# usage: run-e2e-bench.sh [RUNS]   (default 5)
. "$(dirname "$0")/../testbed/lib.sh"
cd "$NVP_ROOT"
runs=${1:-5}
BUILD=${BUILD:-$NVP_ROOT/build}
step "set-up" "$NVP_ROOT/tools/testbed/setup.sh"
KDIR=$("$NVP_ROOT/tools/testbed/build-kernel.sh" | tail -1)
NVP_QEMU=$("$NVP_ROOT/tools/qemu/build-qemu.sh" | tail -1)
export NVP_QEMU NVP_PF_OPTS=hmlms=on
step "module" make -s -C "$KDIR" M="$NVP_ROOT" LLVM="$NVP_LLVM" modules
OUT=$BUILD/bench-e2e
rm -rf "$OUT"; mkdir -p "$OUT"
NVP_QUIET=1 NVP_TIMEOUT=3000 "$NVP_ROOT/tools/testbed/run-e2e.sh" "$OUT" bench --runs "$runs" || true
sed -n '/^L2 migration (/,/^  goal: /p' "$OUT/console.log"
grep -E "^(ok|not ok) " "$OUT/e2e.tap"
