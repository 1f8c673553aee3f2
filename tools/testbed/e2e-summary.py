#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""Print the `make demo` summary from an end-to-end run's OUTDIR/e2e.json.

usage: e2e-summary.py OUTDIR [TOTAL_SECONDS]
Exit status 0 only when every check of the run passed.
"""

import json
import os
import re
import sys


def mib(b):
    return f"{b / 2**20:.1f} MiB" if isinstance(b, int) else "?"


def main():
    out = sys.argv[1]
    total = sys.argv[2] if len(sys.argv) > 2 else None
    try:
        with open(os.path.join(out, "e2e.json")) as f:
            r = json.load(f)
    except (OSError, ValueError) as e:
        print(f"no end-to-end result in {out}: {e}")
        return 1
    tap = ""
    try:
        with open(os.path.join(out, "e2e.tap")) as f:
            tap = f.read()
    except OSError:
        pass
    passed = len(re.findall(r"^ok ", tap, re.M))
    failed = len(re.findall(r"^not ok ", tap, re.M))
    fin = r.get("final", {})
    print("================ nvme-vfio-pci demo ================")
    print(f" L2 VM:              512 MiB, KVM inside the TCG test VM, Debian's unmodified QEMU,")
    print(f"                     boot to workload {r.get('boot_s', '?')} s; guest sees: {r.get('l2_device', '?')}")
    for i, m in enumerate(r.get("migrations", []), 1):
        print(f" migration {i}:        {m.get('from')} -> {m.get('to')}: {m.get('status')}, "
              f"total {m.get('total_ms')} ms, downtime {m.get('downtime_ms')} ms")
        print(f"                     VF state moved {m.get('vfio_bytes')} B (VFIO stream), "
              f"RAM {mib(m.get('ram_bytes'))} ({mib(m.get('ram_downtime_bytes'))} while stopped)")
    if "tracking_sessions" in r:
        print(f" dirty pages:        the VF's device dirty tracking (nvme_vfio_pci vfio_log_ops), "
              f"{r['tracking_sessions']} session(s) by migration 1")
    c = r.get("cancel")
    if c:
        print(f" cancelled migration: stopped at pre-switchover, migrate_cancel -> {c.get('status')}, "
              "source carried on")
    print(f" guest I/O:          {fin.get('writes', '?')} stamped writes, {fin.get('verified', '?')} reads verified, "
          f"{fin.get('errors', '?')} I/O errors, {fin.get('mismatches', '?')} mismatches")
    print(f" guest kernel:       {fin.get('kernel', '?')}")
    print(f" checks:             {passed} passed, {failed} failed")
    if total:
        print(f" total time:         {total} s (L2 consoles and QEMU logs: {out})")
    print("====================================================")
    return 0 if failed == 0 and passed > 0 and fin.get("errors") == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
