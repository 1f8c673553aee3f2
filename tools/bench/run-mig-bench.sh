#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# Build tools/bench/mig_bench and run it in the test VM on the TP4159 device
# model: the stop-copy breakdown through nvme_vfio_pci next to raw NVMe
# passthrough of the same commands, for 1, 8 and the most I/O queue pairs a
# VF can have, in one run. Prints numbers; not a test.
# usage: tools/bench/run-mig-bench.sh [ROUNDS]
#
# The test bed's PF gives a VF at most 4 VQ (3 I/O queue pairs); the bench
# boots it with a larger SR-IOV configuration (NVP_PF_SRIOV, run-vm.sh) and
# gives each of its 4 VFs BENCH_VQ VQ (admin + 16 I/O queue pairs, the
# userspace driver's NVP_MAX_IOQ) and BENCH_VI interrupt vectors (the 16 I/O
# queues share them round-robin). The PF keeps the test bed's private
# resources (3 VQ, 4 VI).
. "$(dirname "$0")/../testbed/lib.sh"
cd "$NVP_ROOT"
OUT=$NVP_ROOT/build/bench
BENCH_VQ=17 BENCH_VI=9
mkdir -p "$OUT"
KDIR=$("$NVP_ROOT/tools/testbed/build-kernel.sh" | tail -1)
make -s -C "$KDIR" M="$NVP_ROOT" LLVM="$NVP_LLVM" modules
"$NVP_ROOT/tools/testbed/build-selftests.sh" "$NVP_ROOT/build" >/dev/null
SRC=$(sed -n "s|^include \(.*\)/Makefile$|\1|p" "$KDIR/Makefile" | head -1)
gcc -O2 -Wall -Wextra -Werror -static -I"$KDIR/usr-headers/include" -I"$NVP_ROOT/selftests" \
	-o "$OUT/mig_bench" tools/bench/mig_bench.c selftests/lib/vfio_nvme.c selftests/lib/vfio_mig.c selftests/lib/pci_sysfs.c
export NVP_QEMU=${NVP_QEMU:-$("$NVP_ROOT/tools/qemu/build-qemu.sh" | tail -1)}
export NVP_PF_OPTS=hmlms=on NVP_QUIET=1
export NVP_PF_SRIOV=${NVP_PF_SRIOV:-sriov_max_vfs=4,sriov_vq_flexible=$((4 * BENCH_VQ)),sriov_vi_flexible=$((4 * BENCH_VI)),sriov_max_vq_per_vf=$BENCH_VQ,sriov_max_vi_per_vf=$BENCH_VI,max_ioqpairs=$((4 * BENCH_VQ + 2)),msix_qsize=$((4 * BENCH_VI + 4))}
rc=0
"$NVP_ROOT/tools/testbed/run-vm.sh" "$OUT" "$NVP_ROOT/tools/bench/guest-mig-bench.sh" "${1:-15}" "$BENCH_VQ" "$BENCH_VI" || rc=$?
# mig_bench's output, without the kernel's lines interleaved on the console.
sed -n '/^# mig_bench:/,/^# mig_bench end/p' "$OUT/console.log" | grep -v '^\[ *[0-9]*\.[0-9]*\] '
[ "$rc" = 0 ] || { grep -E "set-up|failed|round" "$OUT/console.log" | tail -5 >&2; exit "$rc"; }
