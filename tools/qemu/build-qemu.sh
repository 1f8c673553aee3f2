#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Build the project's QEMU (qemu-system-x86_64 only) with the TP4159 device
# model patches from tools/qemu/patches/ applied to Debian trixie's qemu
# source.
#
# Usage: tools/qemu/build-qemu.sh
#
# Every step prints its name and elapsed seconds. The result is cached under
# $NVP_CACHE/qemu-<key>/ (default ~/.cache/nvme-vfio-pci), where <key> hashes
# the source version, every patch and this script, so a rerun with nothing
# changed takes seconds. The last line of stdout is the path of the binary.
#
# Environment:
#   NVP_CACHE      cache directory (default ~/.cache/nvme-vfio-pci)
#   NVP_JOBS       ninja -j (default: nproc)
#   NVP_QEMU_VER   Debian source version to use (default: the pinned one)

set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
NVP_CACHE=${NVP_CACHE:-$HOME/.cache/nvme-vfio-pci}
NVP_JOBS=${NVP_JOBS:-$(nproc)}
PIN_VER=1:10.0.13+ds-0+deb13u1
QEMU_VER=${NVP_QEMU_VER:-$PIN_VER}
PATCHES=("$HERE"/patches/*.patch)
[ -e "${PATCHES[0]}" ] || PATCHES=()

export DEBIAN_FRONTEND=noninteractive
mkdir -p "$NVP_CACHE"

step() {
	local name=$1; shift
	local t0=$SECONDS
	echo "==> [$name] ..."
	"$@"
	echo "==> [$name] done in $((SECONDS - t0)) s"
}
die() { echo "error: $*" >&2; exit 1; }
as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

# --- steps -----------------------------------------------------------------

setup_testbed() {
	# Adds the trixie deb-src entries (and the rest of the project's apt
	# setup); idempotent.
	if [ -x "$ROOT/tools/testbed/setup.sh" ]; then
		"$ROOT/tools/testbed/setup.sh"
	else
		echo "warning: $ROOT/tools/testbed/setup.sh missing; assuming apt sources are set up" >&2
	fi
}

BUILD_DEPS="ninja-build libglib2.0-dev libpixman-1-dev libfdt-dev python3-venv
python3-pycotap flex bison dpkg-dev pkg-config bzip2 xz-utils libslirp-dev"

build_deps() {
	local missing=() p
	for p in $BUILD_DEPS; do
		dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed' || missing+=("$p")
	done
	if [ ${#missing[@]} -gt 0 ]; then
		as_root apt-get install -y -q --no-install-recommends "${missing[@]}"
	fi
	# QEMU 10.0 needs meson >= 1.5; bookworm has 1.0.1.
	local mv
	mv=$(dpkg-query -W -f='${Version}' meson 2>/dev/null || true)
	if [ -z "$mv" ] || dpkg --compare-versions "$mv" lt 1.5; then
		as_root apt-get install -y -q --no-install-recommends -t bookworm-backports meson
	fi
	echo "build deps present (meson $(dpkg-query -W -f='${Version}' meson))"
}

resolve_version() {
	# Prefer the pinned version; fall back to whatever trixie has.
	local all
	all=$(apt-cache showsrc qemu 2>/dev/null | awk '/^Version:/{print $2}')
	if echo "$all" | grep -qxF "$QEMU_VER"; then
		echo "using qemu source $QEMU_VER"
		return 0
	fi
	local v
	v=$(echo "$all" | grep -E '\+deb13u[0-9]+$' | sort -V | tail -1 || true)
	[ -n "$v" ] || die "no trixie qemu source found in apt (is trixie deb-src configured?)"
	echo "warning: qemu source $QEMU_VER not available; falling back to trixie's $v" >&2
	QEMU_VER=$v
}

compute_key() {
	KEY=$({
		echo "$QEMU_VER"
		for p in "${PATCHES[@]}"; do basename "$p"; cat "$p"; done
		cat "$0"
	} | sha256sum | cut -c1-16)
	OUT=$NVP_CACHE/qemu-$KEY
	BIN=$OUT/build/qemu-system-x86_64
	echo "key $KEY -> $OUT"
}

fetch_source() {
	local dl=$NVP_CACHE/qemu-src-dl/$QEMU_VER
	mkdir -p "$dl"
	local upver=${QEMU_VER#*:}
	upver=${upver%-*}
	if ! ls "$dl"/qemu_"$upver".orig.tar.* >/dev/null 2>&1 || ! ls "$dl"/*.dsc >/dev/null 2>&1; then
		(cd "$dl" && apt-get source --download-only "qemu=$QEMU_VER")
	fi
	DSC=$(ls "$dl"/*.dsc | head -1)
	echo "source: $DSC"
}

unpack_source() {
	rm -rf "$OUT.tmp"
	mkdir -p "$OUT.tmp"
	# dpkg-source -x applies Debian's own quilt series (as Debian builds it).
	dpkg-source --no-check -x "$DSC" "$OUT.tmp/src" >/dev/null
	echo "unpacked to $OUT.tmp/src"
}

apply_patches() {
	local p
	for p in "${PATCHES[@]}"; do
		echo "applying $(basename "$p")"
		# --fuzz=0 plus a check for offsets/fuzz/rejects: the series must
		# apply exactly.
		local log
		if ! log=$(patch -p1 --fuzz=0 --no-backup-if-mismatch -d "$OUT.tmp/src" <"$p" 2>&1); then
			echo "$log" >&2
			die "patch $(basename "$p") failed to apply"
		fi
		if echo "$log" | grep -qiE 'fuzz|reject|hunk.*FAILED'; then
			echo "$log" >&2
			die "patch $(basename "$p") applied with fuzz"
		fi
	done
	echo "${#PATCHES[@]} patch(es) applied"
}

stub_firmware() {
	# The +ds tarball lacks pc-bios/edk2-*.fd.bz2; meson wants to
	# decompress them when bzip2 is installed. Empty stubs are enough: the
	# test bed never boots UEFI.
	local src=$OUT.tmp/src n=0 f
	for f in $(grep -o "'edk2-[^']*\.fd'" "$src/pc-bios/meson.build" | tr -d "'"); do
		[ -e "$src/pc-bios/$f.bz2" ] || { bzip2 -c </dev/null >"$src/pc-bios/$f.bz2"; n=$((n + 1)); }
	done
	echo "$n firmware stub(s) created"
}

configure_qemu() {
	mkdir -p "$OUT.tmp/build"
	# The +ds source has no firmware blobs: look for them where Debian's
	# seabios / qemu-system-data / ipxe-qemu packages put them, so the
	# binary runs from the cache without -L options.
	local opts=(--python=/usr/bin/python3 --target-list=x86_64-softmmu --disable-docs
		--disable-werror --disable-user --enable-kvm --disable-install-blobs
		--firmwarepath=/usr/share/qemu:/usr/share/seabios:/usr/lib/ipxe/qemu
		--enable-slirp)
	cd "$OUT.tmp/build"
	if ! ../src/configure "${opts[@]}" >configure.log 2>&1; then
		echo "configure failed with --enable-slirp; retrying without it" >&2
		tail -5 configure.log >&2
		unset 'opts[${#opts[@]}-1]'
		rm -rf "$OUT.tmp/build"/* 
		../src/configure "${opts[@]}" >configure.log 2>&1 ||
			{ tail -30 configure.log >&2; die "configure failed"; }
	fi
	cd - >/dev/null
	echo "configured: ${opts[*]}"
}

build_qemu() {
	nice -n 19 ninja -C "$OUT.tmp/build" -j "$NVP_JOBS" qemu-system-x86_64 >"$OUT.tmp/build/ninja.log" 2>&1 ||
		{ grep -E 'error|Error' -A3 "$OUT.tmp/build/ninja.log" | head -60 >&2; tail -20 "$OUT.tmp/build/ninja.log" >&2; die "build failed (log: $OUT.tmp/build/ninja.log)"; }
	# Move into place only on success, so a cached directory is always whole.
	rm -rf "$OUT"
	mv "$OUT.tmp" "$OUT"
	# Paths inside build.ninja point at $OUT.tmp; a later ninja run in
	# $OUT would reconfigure, which is fine but slow. Record provenance.
	{ echo "version=$QEMU_VER"; echo "key=$KEY"; for p in "${PATCHES[@]}"; do echo "patch=$(basename "$p")"; done; } >"$OUT/BUILD-INFO"
	"$OUT/build/qemu-system-x86_64" --version | head -1
}

check_binary() {
	"$BIN" -device nvme,help 2>/dev/null | grep -q 'hmlms' ||
		{ [ ${#PATCHES[@]} -eq 0 ] || die "built binary lacks the nvme hmlms property"; }
	echo "ok: $("$BIN" --version | head -1)"
}

# --- main --------------------------------------------------------------------

T0=$SECONDS
step "testbed setup (apt sources)" setup_testbed
step "build dependencies" build_deps
step "resolve qemu source version" resolve_version
step "cache key" compute_key
if [ -x "$BIN" ] && [ -f "$OUT/BUILD-INFO" ]; then
	echo "==> cached build found"
else
	step "fetch qemu $QEMU_VER source" fetch_source
	step "unpack" unpack_source
	step "apply patches" apply_patches
	step "stub edk2 firmware" stub_firmware
	step "configure" configure_qemu
	step "build qemu-system-x86_64 (ninja -j$NVP_JOBS, nice 19)" build_qemu
fi
step "check binary" check_binary
echo "total $((SECONDS - T0)) s"
echo "$BIN"
