#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# Runs inside the L1 VM for `make demo`: load the driver, provision VFs,
# bind VF1 through driver_override, drive it from userspace through VFIO
# (cdev + iommufd) and print what happened. Writes $NVP_OUT/demo.env.
. "$(dirname "$0")/lib.sh"

fail() { log "FAILED: $*"; echo "DEMO_RESULT=failed: $*" >>"$NVP_OUT/demo.env"; exit 1; }
: >"$NVP_OUT/demo.env"
load_module || fail "module did not load"
provision_vfs 2 || fail "VF provisioning failed"
VF1=$(vf_bdf 1); VF2=$(vf_bdf 2)
bind "$VF1" "$NVP_DRIVER" || fail "VF $VF1 did not bind to $NVP_DRIVER"
bind "$VF2" "$NVP_DRIVER" || fail "VF $VF2 did not bind to $NVP_DRIVER"
line=$(dmesg | grep "nvme_vfio_pci $VF1: bound:" | tail -1)
pfline=$(dmesg | grep "migration controller nvme" | tail -1)
log "$line"
log "$pfline"
cdev=$(ls "/sys/bus/pci/devices/$VF1/vfio-dev/" 2>/dev/null | head -1)
log "VF $VF1: driver $(driver_of "$VF1"), /dev/vfio/devices/$cdev, IOMMU group $(basename "$(readlink -f /sys/bus/pci/devices/$VF1/iommu_group)")"
{
	echo "DEMO_VF=$VF1"
	echo "DEMO_DRIVER=$(driver_of "$VF1")"
	echo "DEMO_CDEV=/dev/vfio/devices/$cdev"
	echo "DEMO_SCID=$(echo "$line" | sed -n 's/.*secondary controller ID \([0-9]*\).*/\1/p')"
	echo "DEMO_PF_LINE=\"${pfline#*: }\""
} >>"$NVP_OUT/demo.env"

# Userspace NVMe driver on the VF through VFIO: enable, I/O queue, write, read back.
ST=${NVP_SELFTESTS:-$NVP_REPO/build/selftests}
io=$ST/nvp_nvme_test
if [ -x "$io" ]; then
	out=$(NVP_VF=$VF1 NVP_VF2=$VF2 NVP_PF=$NVP_PF NVP_DRIVER=$NVP_DRIVER timeout 300 "$io" 2>&1)
	echo "$out" | grep -E "^(ok|not ok) " | sed 's/^/  /'
	echo "DEMO_TESTS_PASSED=$(echo "$out" | grep -E '^ok ' | grep -vc '# SKIP')" >>"$NVP_OUT/demo.env"
	echo "DEMO_TESTS_SKIPPED=$(echo "$out" | grep -E '^ok ' | grep -c '# SKIP')" >>"$NVP_OUT/demo.env"
	echo "DEMO_TESTS_FAILED=$(echo "$out" | grep -cE '^not ok ')" >>"$NVP_OUT/demo.env"
fi
mig=$ST/nvp_mig_test
if [ -x "$mig" ]; then
	out=$(NVP_VF=$VF1 NVP_VF2=$VF2 NVP_PF=$NVP_PF NVP_DRIVER=$NVP_DRIVER NVP_EXPECT_MIGRATION=1 timeout 600 "$mig" 2>&1)
	echo "$out" | grep -E "^(ok|not ok) |stream:|carries on" | sed 's/^/  /'
	{
		echo "DEMO_VF2=$VF2"
		echo "DEMO_STREAM_BYTES=$(echo "$out" | sed -n 's/.*stream: \([0-9]*\) bytes.*/\1/p' | head -1)"
		echo "DEMO_MIG_PASSED=$(echo "$out" | grep -E '^ok ' | grep -vc '# SKIP')"
		echo "DEMO_MIG_FAILED=$(echo "$out" | grep -cE '^not ok ')"
	} >>"$NVP_OUT/demo.env"
	echo "$out" | grep -qE '^not ok ' && fail "migration checks failed"
fi
unbind "$VF1"
unbind "$VF2"
rmmod nvme_vfio_pci || fail "rmmod failed"
scan_kernel_log >/dev/null || fail "kernel log shows a BUG/WARNING"
echo "DEMO_RESULT=ok" >>"$NVP_OUT/demo.env"
