#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# Build (or reuse) the debug variant of the test kernel: kernel.config plus
# kernel-debug.config (KASAN, lockdep, DEBUG_ATOMIC_SLEEP, kmemleak,
# DEBUG_LIST, PROVE_RCU, UBSAN), cached in ~/.cache/nvme-vfio-pci/ under its
# own key. Prints the build directory on the last line and leaves
# kernel-latest pointing at the normal kernel.
. "$(dirname "$0")/lib.sh"
T=$NVP_ROOT/tools/testbed
out=$("$T/build-kernel.sh" "$T/kernel.config" "$T/kernel-debug.config" | tail -1) || die "debug kernel build failed"
"$T/build-kernel.sh" >/dev/null || die "normal kernel missing"
ln -sfn "$out" "$NVP_CACHE/kernel-debug"
echo "$out"
