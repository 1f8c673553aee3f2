#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# Build the test kernel (Linux 7.3.y, LLVM=-19, Rust) from the committed config
# fragment(s), cached outside the clone by a hash of every input.
#
# usage: build-kernel.sh [FRAGMENT...]   (default: tools/testbed/kernel.config)
# prints, as its last line, the build directory (KBUILD_OUTPUT) to use.

. "$(dirname "$0")/lib.sh"

FRAGS=("$@")
[ ${#FRAGS[@]} -gt 0 ] || FRAGS=("$NVP_ROOT/tools/testbed/kernel.config")

# --- 1. the source: ../shared/vendor first (checked), apt as the fallback ---
get_source_deb() {
	local deb=""
	local v
	for v in "$NVP_SHARED"/vendor/linux-source-7.3_*.deb; do
		[ -f "$v" ] || continue
		[ -f "$v.sha256" ] || { echo "skipping $v: no $v.sha256 beside it" >&2; continue; }
		local want got
		want=$(awk '{print $1}' "$v.sha256")
		got=$(sha256sum "$v" | awk '{print $1}')
		[ "$want" = "$got" ] || die "$v: sha256 mismatch ($got, expected $want)"
		deb=$v
	done
	if [ -z "$deb" ]; then
		mkdir -p "$NVP_CACHE/debs"
		deb=$(ls "$NVP_CACHE"/debs/linux-source-7.3_*.deb 2>/dev/null | tail -1 || true)
		if [ -z "$deb" ]; then
			(cd "$NVP_CACHE/debs" && apt-get download linux-source-7.3/trixie-backports >&2)
			deb=$(ls "$NVP_CACHE"/debs/linux-source-7.3_*.deb | tail -1)
		fi
	fi
	echo "$deb"
}

DEB=$(get_source_deb)
SRC_VER=$(dpkg-deb -f "$DEB" Version)
SRC=$NVP_CACHE/src/linux-$SRC_VER
unpack() {
	if [ -f "$SRC/.unpacked" ]; then echo "source $SRC_VER already unpacked"; return; fi
	rm -rf "$SRC" "$SRC.tmp"; mkdir -p "$SRC.tmp"
	dpkg-deb --fsys-tarfile "$DEB" | tar -xO ./usr/src/linux-source-7.3.tar.xz |
		tar -xJ -C "$SRC.tmp" --strip-components=1
	mv "$SRC.tmp" "$SRC"; touch "$SRC/.unpacked"
}
step "kernel source $SRC_VER ($(basename "$DEB"))" unpack >&2

# --- 2. configure and build in a directory keyed by every input ---
KEY=$(nvp_kernel_key "$SRC_VER" "${FRAGS[@]}")
OUT=$NVP_CACHE/kernel-$KEY
MK=(make -C "$SRC" O="$OUT" LLVM="$NVP_LLVM")

configure() {
	mkdir -p "$OUT"
	"${MK[@]}" -s x86_64_defconfig
	"${MK[@]}" -s kvm_guest.config
	(cd "$OUT" && "$SRC/scripts/kconfig/merge_config.sh" -m -O "$OUT" .config "${FRAGS[@]}" >/dev/null)
	"${MK[@]}" -s olddefconfig
	# Every requested value must have taken effect.
	local bad=0 line
	while IFS= read -r line; do
		case "$line" in
		CONFIG_*=*)
			grep -qx "$line" "$OUT/.config" || { echo "config: $line did not take effect" >&2; bad=1; } ;;
		"# CONFIG_"*" is not set")
			local sym=${line#\# }; sym=${sym%% *}
			if grep -q "^$sym=" "$OUT/.config"; then echo "config: $sym should be off" >&2; bad=1; fi ;;
		esac
	done < <(cat "${FRAGS[@]}")
	[ $bad = 0 ] || die "kernel config fragment not applied cleanly"
	"${MK[@]}" -s rustavailable
}

build() {
	"${MK[@]}" -j"$NVP_JOBS" bzImage modules >"$OUT/build.log" 2>&1 ||
		{ tail -40 "$OUT/build.log" >&2; die "kernel build failed (log: $OUT/build.log)"; }
	touch "$OUT/.built"
}

if [ -f "$OUT/.built" ]; then
	echo "==> [kernel $SRC_VER] cached: $OUT" >&2
else
	step "kernel configure ($SRC_VER, key $KEY)" configure >&2
	step "kernel build (bzImage + modules, -j$NVP_JOBS)" build >&2
fi
ln -sfn "$OUT" "$NVP_CACHE/kernel-latest"
echo "$OUT"
