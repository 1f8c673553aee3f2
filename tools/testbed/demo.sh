#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# `make demo`: set up, build the kernel, the TP4159 QEMU device model and the
# module, boot the test VM (L1), and inside it let Debian's unmodified QEMU
# live-migrate a running VM (L2, under KVM) with its NVMe VF from VF1 to VF2
# and back, then cancel a third migration after the source stopped. The L2
# guest writes and verifies stamped blocks through its stock nvme driver the
# whole time. Prints a summary.
. "$(dirname "$0")/lib.sh"
cd "$NVP_ROOT"
BUILD=${BUILD:-$NVP_ROOT/build}
mkdir -p "$BUILD"
t0=$SECONDS
step "set-up" "$NVP_ROOT/tools/testbed/setup.sh"
KDIR=$("$NVP_ROOT/tools/testbed/build-kernel.sh" | tail -1)
QEMU=$("$NVP_ROOT/tools/qemu/build-qemu.sh" | tail -1)
export NVP_QEMU=$QEMU NVP_PF_OPTS=hmlms=on
step "module" make -s -C "$KDIR" M="$NVP_ROOT" LLVM="$NVP_LLVM" modules
OUT=$BUILD/vm-demo
rm -rf "$OUT"; mkdir -p "$OUT"
rc=0
NVP_QUIET=1 NVP_TIMEOUT=960 step "VM: L2 migration by unmodified QEMU" \
	"$NVP_ROOT/tools/testbed/run-e2e.sh" "$OUT" test || rc=$?
sed 's/^/  | /' "$OUT/e2e.tap" 2>/dev/null || true
echo
python3 "$NVP_ROOT/tools/testbed/e2e-summary.py" "$OUT" "$((SECONDS - t0))" || rc=1
exit "$rc"
