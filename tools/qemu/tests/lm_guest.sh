#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# Guest side of the TP4159 device-model test (run by run-lm-test.sh through
# tools/testbed/run-vm.sh): provision two VFs, bind VF1 to nvme, leave VF2
# unbound, run lm_test (built on the host into $NVP_OUT) and keep its TAP.
. tools/testbed/guest/lib.sh

# The CDQ tests need the PF to DMA to physical addresses (the passthrough
# ioctl unmaps its buffer after the command, the queue lives on): put the
# PF's IOMMU group in an identity domain, rebinding nvme around it.
pf_identity=0
wait_for 20 nvme_dev_of "$NVP_PF" >/dev/null || log "PF has no nvme device"
grp=$(basename "$(readlink -f "$SYSPCI/$NVP_PF/iommu_group")")
if [ -n "$grp" ] && [ -e "/sys/kernel/iommu_groups/$grp/type" ]; then
	echo "$NVP_PF" >"$SYSPCI/$NVP_PF/driver/unbind"
	if echo identity >"/sys/kernel/iommu_groups/$grp/type"; then
		pf_identity=1
	fi
	echo "$NVP_PF" >/sys/bus/pci/drivers/nvme/bind
	log "PF IOMMU group $grp: $(cat "/sys/kernel/iommu_groups/$grp/type")"
fi
export LM_PF_IDENTITY=$pf_identity

# 4 queue resources per VF (admin + 3 I/O): VF1's driver uses what its one
# interrupt vector allows (one I/O queue), the pc0 test creates its PC=0
# queue pair in a free QID above it.
provision_vfs 2 4 || { echo "not ok 1 - provision VFs"; exit 1; }
vf1=$(vf_bdf 1)
vf2=$(vf_bdf 2)

# The cross-VF test lets VF2 continue VF1's queues in place: both need
# identity IOMMU domains so that their bus addresses coincide.
vf_identity=1
for vf in "$vf1" "$vf2"; do
	g=$(basename "$(readlink -f "$SYSPCI/$vf/iommu_group")")
	echo identity >"/sys/kernel/iommu_groups/$g/type" 2>/dev/null || vf_identity=0
	log "$vf IOMMU group $g: $(cat "/sys/kernel/iommu_groups/$g/type")"
done
export LM_VF_IDENTITY=$vf_identity
bind "$vf1" nvme || { echo "not ok 1 - bind $vf1 to nvme"; exit 1; }
wait_for 20 nvme_dev_of "$vf1" >/dev/null || { echo "not ok 1 - $vf1 has no nvme device"; exit 1; }
dev=$(nvme_dev_of "$vf1")
wait_for 20 test -b "${dev}n1" || log "no ${dev}n1"
log "VF1 $vf1 -> $dev; VF2 $vf2 unbound"

"$NVP_OUT/lm_test" "$NVP_PF" "$vf1" "$vf2" "$@" | tee "$NVP_OUT/lm_test.tap"
rc=${PIPESTATUS[0]}
if ! scan_kernel_log; then
	echo "# kernel log shows problems (see above)"
fi
dmesg | grep -iE 'nvme|DMAR' | tail -30 | sed 's/^/# dmesg: /'
exit "$rc"
