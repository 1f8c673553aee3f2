#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# Guest side of the TP4159 device-model test (run by run-lm-test.sh through
# tools/testbed/run-vm.sh): provision two VFs, bind VF1 to nvme, leave VF2
# unbound, run lm_test (built on the host into $NVP_OUT) and keep its TAP.
. tools/testbed/guest/lib.sh

provision_vfs 2 || { echo "not ok 1 - provision VFs"; exit 1; }
vf1=$(vf_bdf 1)
vf2=$(vf_bdf 2)
bind "$vf1" nvme || { echo "not ok 1 - bind $vf1 to nvme"; exit 1; }
wait_for 20 nvme_dev_of "$vf1" >/dev/null || { echo "not ok 1 - $vf1 has no nvme device"; exit 1; }
dev=$(nvme_dev_of "$vf1")
wait_for 20 test -b "${dev}n1" || log "no ${dev}n1"
log "VF1 $vf1 -> $dev; VF2 $vf2 unbound"

"$NVP_OUT/lm_test" "$NVP_PF" "$vf1" "$vf2" | tee "$NVP_OUT/lm_test.tap"
rc=${PIPESTATUS[0]}
if ! scan_kernel_log; then
	echo "# kernel log shows problems (see above)"
fi
dmesg | grep -iE 'nvme|DMAR' | tail -30 | sed 's/^/# dmesg: /'
exit "$rc"
