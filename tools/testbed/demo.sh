#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# `make demo`: set up, build the kernel, the TP4159 QEMU device model, the
# module and the test programs, boot the test VM, bind two NVMe VFs to
# nvme_vfio_pci, drive VF1 from userspace through VFIO, live-migrate its
# controller to VF2 through the VFIO migration uAPI, and print a summary.
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
echo " live migration:      ${DEMO_VF:-?} -> ${DEMO_VF2:-?} through the VFIO migration uAPI, stream ${DEMO_STREAM_BYTES:-?} bytes"
echo "                      ${DEMO_MIG_PASSED:-0} migration checks passed, ${DEMO_MIG_FAILED:-?} failed (data verified on VF2,"
echo "                      in-flight command completed on VF2, cancel, damaged streams refused)"
echo " result:              ${DEMO_RESULT:-no result (VM exit $rc)}"
echo " total time:          $((SECONDS - t0)) s (console log: $OUT/console.log)"
echo "===================================================="
[ "$rc" = 0 ] && [ "${DEMO_RESULT:-}" = ok ]
