#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# Build tools/bench/mig_bench and run it in the test VM on the TP4159 device
# model: the stop-copy breakdown through nvme_vfio_pci next to raw NVMe
# passthrough of the same commands, in one run. Prints numbers; not a test.
# usage: tools/bench/run-mig-bench.sh [ROUNDS]
. "$(dirname "$0")/../testbed/lib.sh"
cd "$NVP_ROOT"
OUT=$NVP_ROOT/build/bench
mkdir -p "$OUT"
KDIR=$("$NVP_ROOT/tools/testbed/build-kernel.sh" | tail -1)
make -s -C "$KDIR" M="$NVP_ROOT" LLVM="$NVP_LLVM" modules
"$NVP_ROOT/tools/testbed/build-selftests.sh" "$NVP_ROOT/build" >/dev/null
SRC=$(sed -n "s|^include \(.*\)/Makefile$|\1|p" "$KDIR/Makefile" | head -1)
gcc -O2 -Wall -Wextra -Werror -static -I"$KDIR/usr-headers/include" -I"$NVP_ROOT/selftests" \
	-o "$OUT/mig_bench" tools/bench/mig_bench.c selftests/lib/vfio_nvme.c selftests/lib/vfio_mig.c selftests/lib/pci_sysfs.c
export NVP_QEMU=${NVP_QEMU:-$("$NVP_ROOT/tools/qemu/build-qemu.sh" | tail -1)}
export NVP_PF_OPTS=hmlms=on NVP_QUIET=1
"$NVP_ROOT/tools/testbed/run-vm.sh" "$OUT" "$NVP_ROOT/tools/bench/guest-mig-bench.sh" "${1:-15}"
sed -n '/^# stop-copy/,/^vendor state/p' "$OUT/console.log"
