# SPDX-License-Identifier: GPL-2.0
# Guest-side helpers (run inside the L1 test VM, as root, cwd = repository).
# Sourced by the guest scripts.

set -uo pipefail

# Per-run settings from the host (e.g. NVP_MODULE for the debug kernel's
# module): the guest starts with a clean environment.
# shellcheck disable=SC1091
[ -n "${NVP_OUT:-}" ] && [ -f "$NVP_OUT/guest.env" ] && . "$NVP_OUT/guest.env"

NVP_PF=${NVP_PF:-0000:01:00.0}
NVP_NONVF=${NVP_NONVF:-0000:02:00.0}
NVP_DRIVER=${NVP_DRIVER:-nvme_vfio_pci}
NVP_MODULE=${NVP_MODULE:-$NVP_REPO/nvme_vfio_pci.ko}
SYSPCI=/sys/bus/pci/devices

# TAP: `tap OK|FAIL NAME` appends the next numbered line to $TAP_FILE (and
# prints it), NAME prefixed with $TAP_PREFIX; `chk NAME CMD...` runs CMD and
# records whether it succeeded (and returns that).
TAP_FILE=${TAP_FILE:-/dev/null} TAP_PREFIX=${TAP_PREFIX:-}
tap() {
	local n
	n=$(grep -cE '^(not )?ok ' "$TAP_FILE" 2>/dev/null); n=$((n + 1))
	if [ "$1" = OK ]; then echo "ok $n $TAP_PREFIX$2"; else echo "not ok $n $TAP_PREFIX$2"; fi | tee -a "$TAP_FILE"
}
chk() { local name=$1; shift; if "$@"; then tap OK "$name"; else tap FAIL "$name"; return 1; fi; }

log() { echo "[guest $(cut -d' ' -f1 /proc/uptime)s] $*"; }

# The /dev/nvmeN of a PCI function bound to nvme.
nvme_dev_of() {
	local d
	for d in "$SYSPCI/$1"/nvme/nvme*; do
		[ -e "$d" ] && { echo "/dev/$(basename "$d")"; return 0; }
	done
	return 1
}

wait_for() { # wait_for SECONDS CMD...
	local t=$(( $1 * 10 )); shift
	while [ $t -gt 0 ]; do "$@" && return 0; sleep 0.1; t=$((t - 1)); done
	return 1
}

# provision_vfs N [VQ [VI]]: create N VFs on the PF and bring their
# secondary controllers online with VQ queue resources (admin + VQ-1 I/O
# queues, default 2) and VI interrupt resources (default 1) each. The PF has
# 8 flexible VQ and 4 flexible VI, at most 4 VQ and 2 VI per VF (run-vm.sh;
# NVP_PF_SRIOV changes that, as make bench does).
provision_vfs() {
	local n=$1 vq=${2:-2} vi=${3:-1} pfdev i scid
	wait_for 20 nvme_dev_of "$NVP_PF" >/dev/null || { log "PF $NVP_PF has no nvme device"; return 1; }
	pfdev=$(nvme_dev_of "$NVP_PF")
	echo 0 >"$SYSPCI/$NVP_PF/sriov_drivers_autoprobe"
	echo "$n" >"$SYSPCI/$NVP_PF/sriov_numvfs" || return 1
	for i in $(seq 1 "$n"); do
		scid=$i
		nvme virt-mgmt "$pfdev" -c "$scid" -r 0 -a 8 -n "$vq" >/dev/null || return 1
		nvme virt-mgmt "$pfdev" -c "$scid" -r 1 -a 8 -n "$vi" >/dev/null || return 1
		nvme virt-mgmt "$pfdev" -c "$scid" -a 9 >/dev/null || return 1
	done
	log "provisioned $n VFs on $NVP_PF ($pfdev): $vq VQ, $vi VI each"
}

vf_bdf() { # vf_bdf N (1-based)
	basename "$(readlink -f "$SYSPCI/$NVP_PF/virtfn$(( $1 - 1 ))")"
}

driver_of() {
	local l="$SYSPCI/$1/driver"
	[ -e "$l" ] && basename "$(readlink -f "$l")" || echo none
}

# bind BDF DRIVER: bind through driver_override (the only way our driver binds).
bind() {
	local bdf=$1 drv=$2 cur
	cur=$(driver_of "$bdf")
	[ "$cur" = "$drv" ] && return 0
	[ "$cur" != none ] && echo "$bdf" >"$SYSPCI/$bdf/driver/unbind"
	echo "$drv" >"$SYSPCI/$bdf/driver_override"
	echo "$bdf" >/sys/bus/pci/drivers_probe 2>/dev/null
	[ "$(driver_of "$bdf")" = "$drv" ]
}

unbind() {
	local bdf=$1
	[ "$(driver_of "$bdf")" = none ] || echo "$bdf" >"$SYSPCI/$bdf/driver/unbind"
	echo >"$SYSPCI/$bdf/driver_override"
}

load_module() {
	[ -f "$NVP_MODULE" ] || { log "no module at $NVP_MODULE"; return 1; }
	insmod "$NVP_MODULE"
}

# The kernel log from here on is what a run is judged by: the first script
# to source this file writes a marker into it (the debug kernel under TCG
# has printed a KASAN report from an interrupt during identify_cpu at
# 0.007 s, long before any of our code runs). If the marker has been
# overwritten (ring buffer full), the whole log counts.
NVP_LOG_MARK="nvme-vfio-pci test run starts"
if [ -z "${NVP_LOG_MARKED:-}" ]; then
	echo "$NVP_LOG_MARK" >/dev/kmsg 2>/dev/null
	export NVP_LOG_MARKED=1
fi
log_since_mark() {
	local all
	all=$(dmesg)
	if grep -q "$NVP_LOG_MARK" <<<"$all"; then
		sed -n "/$NVP_LOG_MARK/,\$p" <<<"$all"
	else
		echo "$all"
	fi
}

# Kernel log problems that fail a run: oopses, warnings, KASAN and UBSAN
# reports, lockdep splats (they start with "WARNING:"), kmemleak findings.
scan_kernel_log() {
	log_since_mark | grep -E "BUG:|WARNING:|Oops|Call Trace|KASAN|UBSAN|possible circular locking|unreferenced object|suspected memory leak|general protection" && return 1
	return 0
}

# kmemleak_check: on a kernel with kmemleak, scan now and fail on any leak
# (the report goes to $NVP_OUT/kmemleak.txt). A kernel without it passes.
kmemleak_check() {
	local f=/sys/kernel/debug/kmemleak n
	[ -e "$f" ] || return 0
	echo scan >"$f"; sleep 2; echo scan >"$f"
	cat "$f" >"$NVP_OUT/kmemleak.txt"
	n=$(grep -c "unreferenced object" "$NVP_OUT/kmemleak.txt")
	echo "kmemleak: $n unreferenced objects"
	[ "$n" = 0 ] || { head -40 "$NVP_OUT/kmemleak.txt"; return 1; }
}
