#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# Build the kselftests (selftests/) against the 7.3 uapi headers.
# usage: build-selftests.sh OUTDIR   (binaries go to OUTDIR/selftests)
. "$(dirname "$0")/lib.sh"

out=$(realpath -m "${1:?usage: build-selftests.sh OUTDIR}")
KDIR=$(readlink -f "$NVP_CACHE/kernel-latest")
SRC=$(sed -n "s|^include \(.*\)/Makefile$|\1|p" "$KDIR/Makefile" | head -1)
[ -n "$SRC" ] || SRC=$(ls -d "$NVP_CACHE"/src/linux-* | tail -1)
HDR=$KDIR/usr-headers
if [ ! -f "$HDR/.done" ]; then
	make -s -C "$SRC" O="$KDIR" headers_install INSTALL_HDR_PATH="$HDR" >/dev/null
	touch "$HDR/.done"
fi
mkdir -p "$out/selftests"
make -s -C "$NVP_ROOT/selftests" KSRC="$SRC" KHDR="$HDR" OUTPUT="$out/selftests"
