#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# Run the TP4159 device-model test in the L1 test VM.
#
# usage: tools/qemu/tests/run-lm-test.sh [OUTDIR [GROUP...]]
#   GROUP: run only these test groups (identify vf fields suspend doorbell
#          setstate reset cdq cross); default all
# environment: NVP_QEMU (default: the binary tools/qemu/build-qemu.sh builds),
#              plus everything tools/testbed/run-vm.sh accepts.
# Writes OUTDIR/lm_test.tap (TAP) and OUTDIR/console.log; exits non-zero if
# any test failed.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../../.." && pwd)
# not under /tmp: the guest mounts a tmpfs there
OUT=$(realpath -m "${1:-${NVP_CACHE:-$HOME/.cache/nvme-vfio-pci}/lm-test}")
mkdir -p "$OUT"

if [ -z "${NVP_QEMU:-}" ]; then
	NVP_QEMU=$("$HERE/../build-qemu.sh" | tail -1)
fi
export NVP_QEMU
export NVP_PF_OPTS=${NVP_PF_OPTS:-hmlms=on}
export NVP_TIMEOUT=${NVP_TIMEOUT:-300}

gcc -O2 -Wall -Wextra -o "$OUT/lm_test" "$HERE/lm_test.c"
rm -f "$OUT/lm_test.tap"
rc=0
shift || true
"$ROOT/tools/testbed/run-vm.sh" "$OUT" "$HERE/lm_guest.sh" "$@" || rc=$?
if [ -f "$OUT/lm_test.tap" ]; then
	grep -E '^# [0-9]+ passed' "$OUT/lm_test.tap" || true
fi
echo "results: $OUT/lm_test.tap (console: $OUT/console.log)"
exit "$rc"
