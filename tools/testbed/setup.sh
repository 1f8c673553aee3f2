#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# Install everything the project needs on a Debian 12 machine, idempotently.
# Every step prints its name and elapsed time. Safe to run again: each step
# checks first and does nothing when its work is already done.

. "$(dirname "$0")/lib.sh"

export DEBIAN_FRONTEND=noninteractive
STAMP=$NVP_CACHE/setup.stamp
# Bump when the package set changes, so every machine re-runs the apt steps.
SETUP_VERSION=5

apt_sources() {
	local f=/etc/apt/sources.list.d/nvme-vfio-pci.sources
	local want
	want=$(cat <<'S'
Types: deb deb-src
URIs: http://deb.debian.org/debian
Suites: bookworm-backports trixie trixie-backports sid
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb-src
URIs: http://deb.debian.org/debian
Suites: bookworm
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
S
)
	local pin
	pin=$(cat <<'P'
# Keep the base system on bookworm: newer suites only when asked for by name.
Package: *
Pin: release n=bookworm-backports
Pin-Priority: 100

Package: *
Pin: release n=trixie
Pin-Priority: 100

Package: *
Pin: release n=trixie-backports
Pin-Priority: 100

Package: *
Pin: release n=sid
Pin-Priority: 50
P
)
	local changed=0
	if [ "$(cat "$f" 2>/dev/null)" != "$want" ]; then
		echo "$want" >"$f"; changed=1
	fi
	if [ "$(cat /etc/apt/preferences.d/nvme-vfio-pci 2>/dev/null)" != "$pin" ]; then
		echo "$pin" >/etc/apt/preferences.d/nvme-vfio-pci; changed=1
	fi
	if [ $changed = 1 ] || [ ! -f "$STAMP" ] || [ "$(cat "$STAMP")" != "$SETUP_VERSION" ]; then
		apt-get update -q
	fi
}

PKGS_BASE="clang-19 lld-19 llvm-19 libclang-19-dev flex bison bc libelf-dev libssl-dev cpio
busybox-static kmod pciutils nvme-cli ninja-build libglib2.0-dev libpixman-1-dev libfdt-dev
python3-venv python3-pycotap pkg-config dpkg-dev zstd xz-utils bzip2 gzip socat jq
libslirp-dev rsync file"
PKGS_BPO="qemu-system-x86 qemu-system-data qemu-utils seabios ipxe-qemu meson"

apt_packages() {
	if [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$SETUP_VERSION" ]; then
		echo "packages already installed (stamp $SETUP_VERSION)"
		return 0
	fi
	# shellcheck disable=SC2086
	apt-get install -y -q --no-install-recommends $PKGS_BASE
	# shellcheck disable=SC2086
	apt-get install -y -q --no-install-recommends -t bookworm-backports $PKGS_BPO
	echo "$SETUP_VERSION" >"$STAMP"
}

BINDGEN_VERSION=0.72.1
bindgen_cli() {
	if command -v bindgen >/dev/null && bindgen --version | grep -q "$BINDGEN_VERSION"; then
		bindgen --version; return 0
	fi
	cargo install --locked --version "$BINDGEN_VERSION" bindgen-cli
	bindgen --version
}

rust_src() {
	local sysroot
	sysroot=$(rustc --print sysroot)
	if [ -d "$sysroot/lib/rustlib/src/rust/library/core" ]; then
		echo "rust-src present in $sysroot"; return 0
	fi
	rustup component add rust-src
}

step "apt sources (bookworm-backports, trixie, trixie-backports, sid; pinned low)" apt_sources
step "apt packages (LLVM 19, build deps, QEMU from bookworm-backports)" apt_packages
step "bindgen-cli $BINDGEN_VERSION" bindgen_cli
step "rust-src for $(rustc --version)" rust_src
