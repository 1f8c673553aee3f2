#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# `make demo`: set up, build the kernel, module and test programs, boot the
# test VM, bind an NVMe VF to nvme_vfio_pci, drive it through VFIO from
# userspace, and print a summary.
. "$(dirname "$0")/lib.sh"
cd "$NVP_ROOT"
BUILD=${BUILD:-$NVP_ROOT/build}
mkdir -p "$BUILD"
t0=$SECONDS
step "set-up" "$NVP_ROOT/tools/testbed/setup.sh"
KDIR=$("$NVP_ROOT/tools/testbed/build-kernel.sh" | tail -1)
step "module" make -s -C "$KDIR" M="$NVP_ROOT" LLVM="$NVP_LLVM" modules
step "test programs" "$NVP_ROOT/tools/testbed/build-selftests.sh" "$BUILD"
OUT=$BUILD/vm-demo
rm -rf "$OUT"; mkdir -p "$OUT"
rc=0
NVP_QUIET=1 NVP_SELFTESTS=$BUILD/selftests step "VM: bind a VF and use it" \
	"$NVP_ROOT/tools/testbed/run-vm.sh" "$OUT" "$NVP_ROOT/tools/testbed/guest/demo.sh" || rc=$?
grep -E '^\[guest |^  (ok|not ok) |nvme_vfio_pci|migration controller' "$OUT/console.log" | grep -v resetting | sed 's/^/  | /' || true
# shellcheck disable=SC1091
. "$OUT/demo.env" 2>/dev/null || true
echo
echo "================ nvme-vfio-pci demo ================"
echo " VF:                  ${DEMO_VF:-?} bound to ${DEMO_DRIVER:-?} (${DEMO_CDEV:-?})"
echo " secondary controller ${DEMO_SCID:-?} (CNTLID of the VF, from Identify CNS 15h on the PF)"
echo " PF:                  ${DEMO_PF_LINE:-?}"
echo " VFIO userspace I/O:  ${DEMO_TESTS_PASSED:-0} checks passed, ${DEMO_TESTS_FAILED:-?} failed, ${DEMO_TESTS_SKIPPED:-?} skipped (both VFs: enable, Identify, I/O queue, write + read back, reset)"
echo " result:              ${DEMO_RESULT:-no result (VM exit $rc)}"
echo " total time:          $((SECONDS - t0)) s (console log: $OUT/console.log)"
echo "===================================================="
[ "$rc" = 0 ] && [ "${DEMO_RESULT:-}" = ok ]
