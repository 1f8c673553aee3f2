#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# Run every nvme_vfio_pci kselftest binary found beside this script (or in
# $1), each printing TAP.  Exit status: 0 if none failed (skips allowed),
# 1 otherwise.  Environment: see nvp_common.h (NVP_VF, NVP_VF2, NVP_PF,
# NVP_NONVF, NVP_DRIVER).
dir=${1:-$(dirname "$0")}
rc=0
for t in nvp_vfio_test nvp_nvme_test nvp_bind_test nvp_mig_test nvp_fault_test nvp_stream_fuzz nvp_dirty_test; do
	echo "# ==== $t"
	"$dir/$t" || rc=1
done
exit $rc
