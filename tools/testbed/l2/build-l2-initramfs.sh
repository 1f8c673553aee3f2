#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# Build the L2 guest's initramfs for the end-to-end migration test:
# busybox-static, the static workload nvp_load (tools/testbed/l2/nvp_load.c)
# and /init (tools/testbed/l2/init). The L2 kernel is the test kernel itself.
#
# usage: build-l2-initramfs.sh OUTFILE

. "$(dirname "$0")/../lib.sh"

out=$(realpath -m "${1:?usage: build-l2-initramfs.sh OUTFILE}")
stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
mkdir -p "$stage"/{bin,dev,proc,sys,tmp}
cp /bin/busybox "$stage/bin/busybox"
ln -s busybox "$stage/bin/sh"
gcc -O2 -static -Wall -Wextra -Werror -o "$stage/bin/nvp_load" "$NVP_ROOT/tools/testbed/l2/nvp_load.c" ||
	die "nvp_load did not build"
install -m 0755 "$NVP_ROOT/tools/testbed/l2/init" "$stage/init"
(cd "$stage" && find . | cpio -o -H newc --quiet | gzip -1) >"$out.tmp"
mv "$out.tmp" "$out"
echo "$out"
