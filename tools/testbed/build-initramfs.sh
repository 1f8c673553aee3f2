#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# Build the L1 initramfs: busybox-static plus /init (tools/testbed/guest/init).
# /init mounts the host's root read-only over 9p and chroots into it, so the
# guest runs the host's bash, QEMU, nvme-cli and our test binaries.
#
# usage: build-initramfs.sh OUTFILE

. "$(dirname "$0")/lib.sh"

out=${1:?usage: build-initramfs.sh OUTFILE}
stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
mkdir -p "$stage"/{bin,dev,proc,sys,host,tmp}
cp /bin/busybox "$stage/bin/busybox"
file "$stage/bin/busybox" 2>/dev/null | grep -q "statically linked" ||
	ldd /bin/busybox 2>&1 | grep -q "not a dynamic" || die "/bin/busybox is not static (install busybox-static)"
ln -s busybox "$stage/bin/sh"
install -m 0755 "$NVP_ROOT/tools/testbed/guest/init" "$stage/init"
(cd "$stage" && find . | cpio -o -H newc --quiet | gzip -1) >"$out.tmp"
mv "$out.tmp" "$out"
echo "$out"
