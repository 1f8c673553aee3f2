#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# Runs inside the L1 VM: the end-to-end migration of an L2 VM with its NVMe
# VF by Debian's unmodified QEMU (tools/testbed/guest/e2e.py does the QEMU and
# QMP part). Loads the module, provisions two VFs on the TP4159 PF, binds
# both to nvme_vfio_pci, runs e2e.py MODE, unbinds, unloads and checks the
# kernel log. Results in $NVP_OUT: e2e.tap, e2e.json, the L2 consoles.
#
# usage: e2e.sh test|bench L2_KERNEL L2_INITRD [e2e.py options]
. "$(dirname "$0")/lib.sh"

mode=${1:?mode}; l2_kernel=${2:?L2 kernel}; l2_initrd=${3:?L2 initramfs}; shift 3
out=$NVP_OUT
: >"$out/e2e.tap"
TAP_FILE=$out/e2e.tap TAP_PREFIX="e2e: "
fail() { log "FAILED: $*"; tap FAIL "$*"; exit 1; }

load_module || fail "module loads in L1"
provision_vfs 2 || fail "two VFs provisioned on the TP4159 PF"
VF1=$(vf_bdf 1); VF2=$(vf_bdf 2)
bind "$VF1" "$NVP_DRIVER" || fail "VF $VF1 binds to $NVP_DRIVER"
bind "$VF2" "$NVP_DRIVER" || fail "VF $VF2 binds to $NVP_DRIVER"
tap OK "VF1 $VF1 and VF2 $VF2 bound to $NVP_DRIVER"
log "VF1 $VF1 and VF2 $VF2 bound to $NVP_DRIVER; $(dmesg | grep 'migration controller nvme' | tail -1 | sed 's/.*: //')"
[ -e /dev/kvm ] || fail "/dev/kvm in L1 (nested SVM)"
log "L2 QEMU: $(qemu-system-x86_64 --version | head -1)"

rc=0
# A time budget below run-vm.sh's, so a stuck run still saves its logs
# (e2e.py records why each L2 is stuck on SIGTERM); leftover L2s are killed.
[ "$mode" = test ] && budget=840 || budget=2850
timeout -k 20 "${NVP_E2E_BUDGET:-$budget}" python3 "$NVP_REPO/tools/testbed/guest/e2e.py" "$mode" --vf1 "$VF1" --vf2 "$VF2" \
	--kernel "$l2_kernel" --initrd "$l2_initrd" --out "$out" "$@" || rc=$?

pkill -9 -f qemu-system-x86_64 && sleep 1
# What the driver logged, for the record.
dmesg | grep -E "nvme_vfio_pci" | tail -n 40 >"$out/e2e-driver.log"
unbind "$VF1"
unbind "$VF2"
chk "module unloads after the migrations" rmmod nvme_vfio_pci || rc=1
chk "no kmemleak leak (debug kernel; passes where kmemleak is off)" kmemleak_check || rc=1
dmesg >"$out/dmesg.txt"
chk "L1 kernel log clean (no BUG/WARNING/Oops)" scan_kernel_log || rc=1
exit $rc
