#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# Guest side of run-mig-bench.sh.
. tools/testbed/guest/lib.sh
load_module && provision_vfs 3 || exit 1
VF1=$(vf_bdf 1); VF2=$(vf_bdf 2)
bind "$VF1" "$NVP_DRIVER" && bind "$VF2" "$NVP_DRIVER" || exit 1
"$NVP_OUT/mig_bench" "$VF1" "$VF2" "$(nvme_dev_of "$NVP_PF")" 3 "${1:-15}"
