#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# Guest side of run-mig-bench.sh.
# usage: guest-mig-bench.sh [ROUNDS [VQ [VI]]]
#   VQ, VI  resources of each of the 4 VFs (default 2 and 1, the test bed's);
#           run-mig-bench.sh passes what its larger PF allows
. tools/testbed/guest/lib.sh
load_module && provision_vfs 4 "${2:-2}" "${3:-1}" || exit 1
VF1=$(vf_bdf 1); VF2=$(vf_bdf 2)
bind "$VF1" "$NVP_DRIVER" && bind "$VF2" "$NVP_DRIVER" || exit 1
# Secondary controllers 3 and 4 (VFs 3 and 4, bound to nothing) for the passthrough side.
"$NVP_OUT/mig_bench" "$VF1" "$VF2" "$(nvme_dev_of "$NVP_PF")" 3 "$(vf_bdf 3)" 4 "$(vf_bdf 4)" "${1:-15}"
