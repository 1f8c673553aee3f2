#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# End-to-end live migration of an L2 VM with its NVMe VF, from the host:
# builds the L2 initramfs, boots the L1 test VM on the TP4159 device model and
# runs tools/testbed/guest/e2e.sh there (Debian's unmodified QEMU runs L2
# under KVM inside L1 and migrates it over QMP).
#
# usage: run-e2e.sh OUTDIR test|bench [e2e.py options]
# Needs the kernel, the QEMU device model and the module built (make check or
# make demo do that first). Exit status: the guest script's.
. "$(dirname "$0")/lib.sh"

out=$(realpath -m "${1:?usage: run-e2e.sh OUTDIR test|bench [options]}")
mode=${2:?usage: run-e2e.sh OUTDIR test|bench [options]}
shift 2
mkdir -p "$out"
# L1 runs NVP_KERNEL (run-vm.sh's default: the test kernel); L2 runs
# NVP_L2_KERNEL, the normal test kernel unless set (also when L1 runs the
# debug kernel).
kernel=${NVP_L2_KERNEL:-$NVP_CACHE/kernel-latest/arch/x86/boot/bzImage}
[ -f "$kernel" ] || die "no kernel at $kernel"
[ -n "${NVP_QEMU:-}" ] || NVP_QEMU=$("$NVP_ROOT/tools/qemu/build-qemu.sh" | tail -1)
export NVP_QEMU NVP_PF_OPTS=${NVP_PF_OPTS:-hmlms=on}
"$NVP_ROOT/tools/testbed/l2/build-l2-initramfs.sh" "$out/l2-initramfs.cpio.gz" >/dev/null
# L2's kernel is read by L1's QEMU over the host-root 9p share.
# Nested KVM needs multi-threaded TCG in L1: under thread=single, L2 boots
# about 5x slower (measured: 12-16 s against 68-72 s to the L2 shell).
# Multi-threaded TCG can miss the timer wakeup of a halted vCPU (a run then
# hangs, see Documentation/testbed.rst); idle=poll keeps L1's vCPUs from
# halting.
NVP_ACCEL=${NVP_ACCEL:-tcg} NVP_APPEND=${NVP_APPEND-idle=poll} "$NVP_ROOT/tools/testbed/run-vm.sh" "$out" "$NVP_ROOT/tools/testbed/guest/e2e.sh" \
	"$mode" "$(realpath "$kernel")" "$out/l2-initramfs.cpio.gz" "$@"
