#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# Runs inside the L1 VM for `make check`: loads the module (its KUnit suites
# run at load), provisions and binds VFs, runs the kselftests, unloads, and
# checks the kernel log. Results go to $NVP_OUT: kunit.log (dmesg of the
# load), kselftest.tap, dmesg.txt, guest-checks.tap.
. "$(dirname "$0")/lib.sh"

TAP_FILE=$NVP_OUT/guest-checks.tap; : >"$TAP_FILE"

log "kernel $(uname -r)"
chk "module loads" load_module
dmesg >"$NVP_OUT/kunit.log"
chk "modinfo has vfio_pci alias" bash -c "modinfo $NVP_MODULE | grep -q '^alias: *vfio_pci:v\*d\*sv\*sd\*bc01sc08i02'"
# 4 VQ (3 I/O queue pairs) and 2 VI each: all the PF's flexible resources,
# for the many-queue migration test (NVP_VF_VQ tells it what to expect).
VF_VQ=4
chk "provision 2 VFs ($VF_VQ VQ, 2 VI each)" provision_vfs 2 $VF_VQ 2
VF1=$(vf_bdf 1); VF2=$(vf_bdf 2)
log "VF1=$VF1 VF2=$VF2"
chk "VF1 binds to $NVP_DRIVER" bind "$VF1" "$NVP_DRIVER"
chk "VF2 binds to $NVP_DRIVER" bind "$VF2" "$NVP_DRIVER"
chk "VF1 has a vfio cdev" bash -c "ls /sys/bus/pci/devices/$VF1/vfio-dev/ | grep -q '^vfio[0-9]'"
chk "VF1 is not bound without driver_override" bash -c "
	echo $VF1 > /sys/bus/pci/devices/$VF1/driver/unbind; echo > /sys/bus/pci/devices/$VF1/driver_override
	echo $VF1 > /sys/bus/pci/drivers/$NVP_DRIVER/bind 2>/dev/null; r=\$?
	[ \$r != 0 ] && [ ! -e /sys/bus/pci/devices/$VF1/driver ]"
bind "$VF1" "$NVP_DRIVER"

# On a PF with TP4159 the migration tests must run, not skip.
if dmesg | grep -q "migration controller nvme.*HMLMS yes"; then
	export NVP_EXPECT_MIGRATION=1
	log "PF supports Host Managed Live Migration: migration tests are required"
fi

ST=${NVP_SELFTESTS:-$NVP_REPO/build/selftests}
if [ -d "$ST" ]; then
	: >"$NVP_OUT/kselftest.tap"
	for t in "$ST"/*_test "$ST"/*_fuzz; do
		[ -x "$t" ] || continue
		log "running $(basename "$t")"
		NVP_VF=$VF1 NVP_VF2=$VF2 NVP_PF=$NVP_PF NVP_NONVF=$NVP_NONVF NVP_DRIVER=$NVP_DRIVER NVP_VF_VQ=$VF_VQ \
			timeout 400 "$t" 2>&1 | tee -a "$NVP_OUT/kselftest.tap"
	done
else
	log "no selftests in $ST"
fi

# The PF going away while a VF is bound: fenced, nothing crashes, and a
# rebound PF is discovered afresh.
pf_reset() { echo 1 >"$SYSPCI/$NVP_PF/reset" && wait_for 30 nvme_dev_of "$NVP_PF" >/dev/null; }
chk "PF reset with VFs bound" pf_reset
chk "VF rebinds after PF reset" bash -c ". tools/testbed/guest/lib.sh; unbind $VF2 && bind $VF2 $NVP_DRIVER"
chk "PF unbind with a VF bound fences the migration controller" bash -c "
	echo $NVP_PF > /sys/bus/pci/drivers/nvme/unbind && dmesg | grep -q '$NVP_PF: migration controller fenced: PF driver unbinding'"
chk "VF probe refused while the PF is unbound" bash -c ". tools/testbed/guest/lib.sh
	unbind $VF2; ! bind $VF2 $NVP_DRIVER && dmesg | grep -q 'nvme_vfio_pci $VF2: PF is not a live nvme-pci controller'"
chk "bound VF unbinds cleanly after PF loss" bash -c "echo $VF1 > /sys/bus/pci/drivers/$NVP_DRIVER/unbind"
chk "PF rebinds to nvme" bash -c ". tools/testbed/guest/lib.sh; echo > $SYSPCI/$NVP_PF/driver_override
	echo $NVP_PF > /sys/bus/pci/drivers/nvme/bind && wait_for 30 nvme_dev_of $NVP_PF >/dev/null"
chk "VFs bind again after the PF is rebound" bash -c ". tools/testbed/guest/lib.sh; bind $VF1 $NVP_DRIVER && bind $VF2 $NVP_DRIVER"
# The PF's reset left the secondary controllers offline with no resources,
# and the VFs were bound like that: assigning resources now must be seen by
# the destination's checks (it reads them afresh), not the zeros of probe.
reprovision() {
	local pfdev scid
	pfdev=$(nvme_dev_of "$NVP_PF") || return 1
	for scid in 1 2; do
		nvme virt-mgmt "$pfdev" -c $scid -r 0 -a 8 -n $VF_VQ >/dev/null || return 1
		nvme virt-mgmt "$pfdev" -c $scid -r 1 -a 8 -n 2 >/dev/null || return 1
		nvme virt-mgmt "$pfdev" -c $scid -a 9 >/dev/null || return 1
	done
}
chk "bound VFs get resources and come online" reprovision
mig_after_reprovision() {
	local out
	out=$(NVP_VF=$VF1 NVP_VF2=$VF2 NVP_PF=$NVP_PF NVP_DRIVER=$NVP_DRIVER NVP_EXPECT_MIGRATION=${NVP_EXPECT_MIGRATION:-} \
		timeout 120 "$ST/nvp_mig_test" -t vf1_to_vf2_data_verified 2>&1)
	echo "$out" | grep -E "^(not )?ok |too few" | sed 's/^/    /'
	echo "$out" | grep -qE "^ok 1 " && ! echo "$out" | grep -qE "^not ok |# SKIP"
}
chk "VFs provisioned after binding migrate (resources read afresh)" mig_after_reprovision

# Four VFs migrating at once through the one PF: the PF's flexible resources
# give four VFs 2 VQ and 1 VI each. Re-provisioned for this run of
# nvp_fault_test's four_vfs variant, then back to the two VFs above.
reprovision_vfs() { # N VQ VI: unbind ours, re-create N VFs, bind them all
	local i bdf
	for bdf in "$SYSPCI/$NVP_PF"/virtfn*; do
		bdf=$(basename "$(readlink -f "$bdf")")
		[ "$(driver_of "$bdf")" = none ] || echo "$bdf" >"$SYSPCI/$bdf/driver/unbind"
	done
	echo 0 >"$SYSPCI/$NVP_PF/sriov_numvfs" || return 1
	provision_vfs "$1" "$2" "$3" || return 1
	for i in $(seq 1 "$1"); do bind "$(vf_bdf "$i")" "$NVP_DRIVER" || return 1; done
}
four_vfs_at_once() {
	local out
	reprovision_vfs 4 2 1 || return 1
	out=$(NVP_VF=$(vf_bdf 1) NVP_VF2=$(vf_bdf 2) NVP_VF3=$(vf_bdf 3) NVP_VF4=$(vf_bdf 4) \
		NVP_PF=$NVP_PF NVP_DRIVER=$NVP_DRIVER NVP_EXPECT_MIGRATION=${NVP_EXPECT_MIGRATION:-} \
		timeout 300 "$ST/nvp_fault_test" -v four_vfs 2>&1)
	echo "$out" | grep -E "^(not )?ok |^# " | sed 's/^/    /'
	echo "$out" | grep -qE "^ok 1 " && ! echo "$out" | grep -qE "^not ok |# SKIP"
}
chk "four VFs migrate at once through one PF (nvp_fault_test four_vfs)" four_vfs_at_once
chk "back to two VFs ($VF_VQ VQ, 2 VI each), bound" reprovision_vfs 2 $VF_VQ 2

chk "VFs unbind" bash -c "echo $VF1 > /sys/bus/pci/drivers/$NVP_DRIVER/unbind && echo $VF2 > /sys/bus/pci/drivers/$NVP_DRIVER/unbind"
chk "module unloads" rmmod nvme_vfio_pci
chk "module reloads and rebinds after PF re-provisioning" bash -c "
	. tools/testbed/guest/lib.sh; load_module && bind $VF1 $NVP_DRIVER && rmmod nvme_vfio_pci"
chk "no kmemleak leak (debug kernel; passes where kmemleak is off)" kmemleak_check
dmesg >"$NVP_OUT/dmesg.txt"
chk "kernel log clean (no BUG/WARNING/Oops)" scan_kernel_log
