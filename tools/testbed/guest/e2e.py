#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""End-to-end live migration of an L2 VM with its NVMe VF, inside the L1 VM.

Runs Debian's unmodified qemu-system-x86_64 twice (source and destination),
each with an L2 guest under KVM and an NVMe VF bound to nvme_vfio_pci passed
through with ``-device vfio-pci,...,enable-migration=on``, and drives the
migration over QMP. The L2 guest (tools/testbed/l2/) writes stamped blocks to
the VF's namespace through its stock nvme driver and verifies them.

Modes:
  test   VF1 -> VF2, VF2 -> VF1 (ping-pong), then a migration cancelled after
         the source VM stopped (pause-before-switchover): the source must
         carry on. Then the workload is stopped and reports. Prints TAP.
  bench  QEMU-reported total time and downtime of the same L2 VM without
         the VF, with it and the all-dirty fallback, and with it and the
         VF's own dirty tracking, over several runs (min/median/max).

Results go to OUT/e2e.json; every QEMU's console and stderr to OUT/.
"""

import argparse
import glob
import json
import os
import re
import signal
import socket
import statistics
import subprocess
import sys
import time

QEMU = "qemu-system-x86_64"


def log(msg):
    with open("/proc/uptime") as f:
        up = f.read().split()[0]
    print(f"[e2e {up}s] {msg}", flush=True)


class Qmp:
    """A minimal QMP client: one command at a time, events skipped."""

    def __init__(self, path, timeout=60, start_timeout=300):
        deadline = time.monotonic() + timeout
        while True:
            try:
                self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                self.sock.connect(path)
                break
            except OSError:
                self.sock.close()
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
        # QEMU greets once its machine is up, which includes pinning and
        # mapping all guest RAM for VFIO: minutes on a loaded debug L1.
        self.sock.settimeout(start_timeout)
        self.dead = None
        self.rd = self.sock.makefile("r")
        try:
            json.loads(self.rd.readline())  # greeting
            self.cmd("qmp_capabilities")
        except socket.timeout:
            raise RuntimeError(f"QMP: no greeting within {start_timeout} s") from None
        # Later, a QEMU whose main loop is stuck (in a VFIO ioctl, say)
        # does not answer: after a minute the connection counts as dead.
        self.sock.settimeout(60)

    def cmd(self, name, **args):
        if self.dead:
            raise RuntimeError(self.dead)
        msg = {"execute": name}
        if args:
            msg["arguments"] = args
        self.sock.sendall((json.dumps(msg) + "\n").encode())
        while True:
            try:
                line = self.rd.readline()
            except socket.timeout:
                self.dead = f"QMP: no answer to {name} within {self.sock.gettimeout():.0f} s"
                raise RuntimeError(self.dead) from None
            if not line:
                raise RuntimeError(f"QMP connection closed during {name}")
            r = json.loads(line)
            if "return" in r:
                return r["return"]
            if "error" in r:
                raise RuntimeError(f"QMP {name}: {r['error'].get('desc')}")

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


class Vm:
    """One L2 QEMU process."""

    count = 0
    all = []

    def __init__(self, args, vf, incoming=False, tracking=None):
        Vm.count += 1
        self.name = f"vm{Vm.count}-{vf or 'novf'}".replace(":", "_")
        d = args.out
        self.console = os.path.join(d, self.name + ".console")
        self.qmp_path = f"/tmp/{self.name}.qmp"
        self.ctl_path = f"/tmp/{self.name}.ctl"
        self.vf = vf
        self.incoming = incoming
        self.args_out = d
        self.broken = False  # set when the guest stopped making progress
        for p in (self.qmp_path, self.ctl_path):
            if os.path.exists(p):
                os.unlink(p)
        cmd = [
            QEMU, "-machine", "q35,accel=kvm", "-cpu", "host,tsc-deadline=off",
            "-smp", "1", "-m", args.mem, "-nodefaults", "-no-user-config",
            "-display", "none", "-no-reboot",
            "-kernel", args.kernel, "-initrd", args.initrd,
            # quiet boot (kernel lines must not split the init's lines);
            # the L2 init then lets warnings through, see l2/init.
            "-append", f"console=ttyS0 quiet panic=-1 nvp.region={args.region}"
            + ("" if vf else " nvp.novf=1"),
            "-chardev", f"file,id=con,path={self.console}",
            "-device", "isa-serial,chardev=con,index=0",
            "-chardev", f"socket,id=ctl,path={self.ctl_path},server=on,wait=off",
            "-device", "isa-serial,chardev=ctl,index=1",
            "-qmp", f"unix:{self.qmp_path},server=on,wait=off",
        ]
        if vf:
            dev = f"vfio-pci,host={vf},enable-migration=on"
            if (tracking or args.tracking) == "fallback":
                # No device dirty tracking: the legacy type1 container's
                # dirty log reports every mapped page dirty. Reading it only
                # once the device has stopped (x-pre-copy-dirty-page-tracking
                # =off) lets pre-copy converge; the whole guest is then
                # re-sent while stopped.
                dev += ",x-device-dirty-page-tracking=off,x-pre-copy-dirty-page-tracking=off"
            # "device": QEMU finds the VF's DMA logging (nvme_vfio_pci's
            # vfio_log_ops) by itself and uses it in place of the container.
            if args.backend == "iommufd":
                cmd += ["-object", "iommufd,id=iommufd0", "-device", dev + ",iommufd=iommufd0"]
            else:
                cmd += ["-device", dev]
        if incoming:
            cmd += ["-incoming", "defer"]
        self.err = open(os.path.join(d, self.name + ".stderr"), "w")
        self.t0 = time.monotonic()
        self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=self.err,
                                     stderr=subprocess.STDOUT)
        with open(os.path.join(d, self.name + ".cmdline"), "w") as f:
            f.write(" ".join(cmd) + "\n")
        self.qmp = None
        Vm.all.append(self)  # before QMP: diag() covers one that never answers
        self.qmp = Qmp(self.qmp_path)

    def text(self):
        try:
            with open(self.console, errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    def wait_console(self, pattern, timeout, since=0):
        """Wait for a regex in the console (after offset `since`)."""
        rx = re.compile(pattern, re.M)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            m = rx.search(self.text(), since)
            if m:
                return m
            if self.proc.poll() is not None:
                m = rx.search(self.text(), since)
                return m
            time.sleep(0.2)
        return None

    def trouble(self):
        """Signs that this L2 went wrong: an oops, a panic, a reboot, a mismatch."""
        t = self.text()
        bad = re.findall(r"^.*(?:BUG:|Oops|Kernel panic|MISMATCH|I/O ERROR).*$", t, re.M)
        if self.incoming and re.search(r"^nvp-l2: up |^nvp-load: running", t, re.M):
            bad.insert(0, "the guest booted afresh on the destination (it was not migrated)")
        return bad

    def last_status(self):
        """(writes, verified, errors, mismatches) of the last status line, or None."""
        st = re.findall(r"nvp-load: (?:status|DONE) t=\S+ writes=(\d+) reads=\d+ "
                        r"verified=(\d+) blocks=\d+ errors=(\d+) mismatches=(\d+)",
                        self.text())
        return tuple(int(x) for x in st[-1]) if st else None

    def wait_progress(self, timeout, more_than=0):
        """Wait until the workload has reported more than `more_than` writes."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            s = self.last_status()
            if s and s[0] > more_than:
                return s
            if self.proc.poll() is not None:
                break
            time.sleep(0.3)
        return self.last_status()

    def status(self):
        """QEMU's run state ("running", "inmigrate", ...), or why there is none."""
        if self.proc.poll() is not None:
            return f"exited {self.proc.returncode}"
        if self.qmp is None:
            return "no QMP connection"
        try:
            return self.qmp.cmd("query-status").get("status")
        except (RuntimeError, OSError) as e:
            return f"no QMP answer ({e})"

    def running(self):
        return self.status() == "running"

    def wait_running(self, timeout):
        """A destination runs only once it has loaded everything the source
        sent, which can be well after the source reports "completed"."""
        deadline = time.monotonic() + timeout
        st = self.status()
        while st != "running" and time.monotonic() < deadline and self.proc.poll() is None:
            time.sleep(0.2)
            st = self.status()
        return st

    def diag(self, why):
        """Everything that tells why this L2 stalled, into e2e-diag.txt."""
        lines = [f"=== {self.name} ({self.vf}): {why}", f"run state: {self.status()}"]
        try:
            with open(self.err.name, errors="replace") as f:
                lines += ["--- QEMU stderr:"] + f.read().splitlines()[-20:]
        except OSError:
            pass
        lines += ["--- L2 console (last 25 lines):"] + self.text().splitlines()[-25:]
        # Kernel stacks of the QEMU threads: a thread stuck in a VFIO ioctl
        # shows the driver function it waits in.
        for task in sorted(glob.glob(f"/proc/{self.proc.pid}/task/*")):
            try:
                with open(os.path.join(task, "comm")) as f:
                    comm = f.read().strip()
                with open(os.path.join(task, "stack")) as f:
                    stack = f.read().split()
            except OSError:
                continue
            if any("vfio" in x or "nvp" in x or "nvme" in x for x in stack):
                lines.append(f"--- kernel stack of {comm} ({os.path.basename(task)}):")
                with open(os.path.join(task, "stack")) as f:
                    lines += f.read().splitlines()
        dmesg = subprocess.run(["dmesg"], capture_output=True, text=True).stdout.splitlines()
        lines += ["--- L1 kernel log (last 30 lines):"] + dmesg[-30:]
        with open(os.path.join(self.args_out, "e2e-diag.txt"), "a") as f:
            f.write("\n".join(lines) + "\n")
        log(f"diagnostics of {self.name} in e2e-diag.txt: {why}")

    def send_ctl(self, line):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.connect(self.ctl_path)
        s.sendall(line.encode())
        time.sleep(0.5)
        s.close()

    def quit(self, timeout=60):
        if self.proc.poll() is None:
            try:
                self.qmp.cmd("quit")
            except (RuntimeError, OSError):
                pass
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.qmp.close()
        self.err.close()
        return self.proc.returncode


def migrate(args, src, dst, n, pause=False):
    """Migrate src -> dst over a unix socket. Returns query-migrate's final info."""
    uri = f"unix:/tmp/e2e-mig-{n}.sock"
    dst.qmp.cmd("migrate-incoming", uri=uri)
    caps = [{"capability": "pause-before-switchover", "state": pause}]
    src.qmp.cmd("migrate-set-capabilities", capabilities=caps)
    if args.downtime_limit:
        src.qmp.cmd("migrate-set-parameters", **{"downtime-limit": args.downtime_limit})
    src.qmp.cmd("migrate", uri=uri)
    deadline = time.monotonic() + args.mig_timeout
    info = {}
    while time.monotonic() < deadline:
        info = src.qmp.cmd("query-migrate")
        st = info.get("status")
        if st in ("completed", "failed", "cancelled"):
            break
        if pause and st == "pre-switchover":
            break
        time.sleep(0.1)
    return info


def mig_record(info):
    ram = info.get("ram", {})
    vfio = info.get("vfio", {})
    return {
        "status": info.get("status"),
        "total_ms": info.get("total-time"),
        "downtime_ms": info.get("downtime"),
        "setup_ms": info.get("setup-time"),
        "ram_bytes": ram.get("transferred"),
        "ram_downtime_bytes": ram.get("downtime-bytes"),
        "ram_precopy_bytes": ram.get("precopy-bytes"),
        "dirty_syncs": ram.get("dirty-sync-count"),
        "ram_zero_pages": ram.get("duplicate"),
        "ram_normal_pages": ram.get("normal"),
        "vfio_bytes": vfio.get("transferred"),
        "error": info.get("error-desc"),
    }


class Tap:
    def __init__(self, path):
        self.n = 0
        self.fail = 0
        try:
            with open(path) as f:  # continue after the L1 script's checks
                self.n = sum(1 for l in f if re.match(r"(not )?ok ", l))
        except OSError:
            pass
        self.f = open(path, "a")

    def check(self, ok, name, detail=""):
        self.n += 1
        line = f"{'ok' if ok else 'not ok'} {self.n} e2e: {name}"
        if detail:
            line += f" # {detail}" if ok else f" ({detail})"
        print(line, flush=True)
        self.f.write(line + "\n")
        self.f.flush()
        if not ok:
            self.fail += 1
        return ok


def boot(args, vf, tap, what):
    vm = Vm(args, vf)
    m = vm.wait_console(r"^nvp-load: running on .*$", args.boot_timeout)
    boot_s = time.monotonic() - vm.t0
    up = re.search(r"^nvp-l2: up (\S+)s: (.*)$", vm.text(), re.M)
    tap.check(m is not None, f"{what}: L2 boots with {vf} and the workload starts",
              f"{boot_s:.1f} s to workload, L2 kernel up at {up.group(1) if up else '?'} s"
              if m else "no workload start in console " + vm.console)
    return vm, boot_s, (up.group(2) if up else "")


def migrate_and_check(args, tap, src, dst_vf, n, results):
    before = src.wait_progress(args.io_timeout)
    tap.check(before is not None and before[0] > 0, f"migration {n}: source guest I/O running before",
              f"{before[0] if before else 0} writes")
    t0 = time.monotonic()
    dst = Vm(args, dst_vf, incoming=True)
    try:
        info = migrate(args, src, dst, n)
    except (RuntimeError, OSError) as e:
        info = {"status": "error", "error-desc": f"{e}; source QEMU {src.status()}, "
                f"destination QEMU {dst.status()}"}
    rec = mig_record(info)
    rec.update({"from": src.vf, "to": dst_vf, "wall_s": round(time.monotonic() - t0, 2)})
    results["migrations"].append(rec)
    ok = tap.check(rec["status"] == "completed", f"migration {n}: {src.vf} -> {dst_vf} completes",
                   f"total {rec['total_ms']} ms, downtime {rec['downtime_ms']} ms, "
                   f"vfio {rec['vfio_bytes']} B, RAM {rec['ram_bytes']} B"
                   if rec["status"] == "completed" else f"status {rec['status']}: {rec['error']}")
    log(f"migration {n}: {json.dumps(rec)}")
    if not ok:
        src.diag(f"migration {n} did not complete")
        dst.quit()
        return src
    st = dst.wait_running(args.io_timeout)
    if not tap.check(st == "running", f"migration {n}: destination VM runs", f"run state {st}"):
        dst.diag(f"migration {n}: destination not running")
    dst_run_s = time.monotonic()
    src_after = src.last_status()
    src.quit()
    mark = src_after[0] if src_after else 0
    after = dst.wait_progress(args.io_timeout, more_than=mark)
    if not tap.check(after is not None and after[0] > mark and after[2] == 0 and after[3] == 0,
                     f"migration {n}: guest I/O carries on on {dst_vf} with no error",
                     f"{after[0] if after else 0} writes (was {mark} at switchover), "
                     f"{after[1] if after else 0} blocks verified"):
        dst.diag(f"migration {n}: no guest I/O on the destination")
        dst.broken = True
    # Reads checked late (the workload's ring) need a couple of seconds.
    time.sleep(max(0.0, args.settle - (time.monotonic() - dst_run_s)))
    bad = dst.trouble()
    tap.check(not bad, f"migration {n}: destination guest did not oops, reboot or read stale data",
              "; ".join(bad[:3]))
    return dst


def cancel_check(args, tap, src, dst_vf, n, results):
    before = src.wait_progress(args.io_timeout)
    dst = Vm(args, dst_vf, incoming=True)
    info = migrate(args, src, dst, n, pause=True)
    paused = info.get("status") == "pre-switchover"
    if not tap.check(paused and not src.running(),
                     f"cancel: migration {src.vf} -> {dst_vf} reaches pre-switchover with the source stopped",
                     f"status {info.get('status')}"):
        src.diag("cancel: no pre-switchover")
    src.qmp.cmd("migrate_cancel")
    deadline = time.monotonic() + 60
    st = None
    while time.monotonic() < deadline:
        st = src.qmp.cmd("query-migrate").get("status")
        if st in ("cancelled", "failed", "completed"):
            break
        time.sleep(0.1)
    results["cancel"] = {"status": st}
    dst.quit()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and not src.running():
        time.sleep(0.2)
    tap.check(st == "cancelled" and src.running(), "cancel: source VM runs again after migrate_cancel",
              f"status {st}")
    mark = src.last_status()[0] if src.last_status() else 0
    after = src.wait_progress(args.io_timeout, more_than=mark)
    if not tap.check(after is not None and after[0] > mark and after[2] == 0 and after[3] == 0,
                     f"cancel: guest I/O carries on on {src.vf} with no error",
                     f"{after[0] if after else 0} writes (was {before[0] if before else 0} before)"):
        src.diag("cancel: no guest I/O after migrate_cancel")
    return src


def finish(args, tap, vm, results, vms):
    vm.send_ctl("stop\n")
    m = vm.wait_console(r"^nvp-l2: RESULT (\S+)", 60 if vm.broken else 180)
    done = re.search(r"^nvp-load: DONE .*$", vm.text(), re.M)
    kern = re.search(r"^nvp-l2: kernel: (.*)$", vm.text(), re.M)
    st = vm.last_status()
    results["final"] = {
        "writes": st[0] if st else 0, "verified": st[1] if st else 0,
        "errors": st[2] if st else None, "mismatches": st[3] if st else None,
        "kernel": kern.group(1) if kern else None,
        "done_line": done.group(0) if done else None,
    }
    tap.check(done is not None and st is not None and st[2] == 0 and st[3] == 0,
              "workload: every acknowledged block verified, zero I/O errors",
              done.group(0) if done else "no DONE line in " + vm.console)
    tap.check(kern is not None and re.fullmatch(r"nvme timeouts=0 resets=0 ioerrors=0", kern.group(1)) is not None,
              "guest kernel log: no nvme timeout, reset or I/O error",
              kern.group(1) if kern else "no kernel report")
    tap.check(m is not None and m.group(1) == "ok", "L2 guest result ok", m.group(1) if m else "none")
    vm.quit(timeout=60)
    bad = [f"{v.name}: {b}" for v in vms for b in v.trouble()]
    tap.check(not bad, "every L2 console: no oops, panic, reboot, I/O error or mismatch",
              "; ".join(bad[:3]))


def run_test(args):
    tap = Tap(os.path.join(args.out, "e2e.tap"))
    results = {"migrations": [], "vf1": args.vf1, "vf2": args.vf2}
    src, boot_s, l2info = boot(args, args.vf1, tap, "source")
    results["boot_s"] = round(boot_s, 1)
    results["l2_device"] = l2info
    if src.last_status() is None and src.wait_progress(args.io_timeout) is None:
        src.quit()
        return tap, results
    # A step that left the guest stalled fails; the steps after it would
    # only fail the same way, slowly, so they are skipped (and counted).
    vm = migrate_and_check(args, tap, src, args.vf2, 1, results)
    if args.tracking == "device":
        # QEMU picks device dirty tracking by itself when the VF offers it;
        # the driver logs each session it starts.
        dmesg = subprocess.run(["dmesg"], capture_output=True, text=True).stdout
        n = len(re.findall(r"nvme_vfio_pci .*dirty tracking \(.*\) started", dmesg))
        results["tracking_sessions"] = n
        tap.check(n > 0, "migration 1: QEMU used the VF's device dirty tracking",
                  f"{n} tracking session(s) started")
    if vm.vf == args.vf2 and not vm.broken:
        vm = migrate_and_check(args, tap, vm, args.vf1, 2, results)
    else:
        tap.check(False, "migration 2: skipped, migration 1 failed")
    if vm.broken:
        tap.check(False, "cancel: skipped, the guest is stalled")
    elif args.cancel:
        vm = cancel_check(args, tap, vm, args.vf2 if vm.vf == args.vf1 else args.vf1, 3, results)
    finish(args, tap, vm, results, Vm.all)
    return tap, results


BENCH_CONFIGS = (
    # label, with the VF, dirty tracking of what the VF writes
    ("without VF", False, None),
    ("VF fallback", True, "fallback"),
    ("VF tracking", True, "device"),
)


def run_bench(args):
    """Total time and downtime of the same L2 VM (a) without the VF, (b) with
    it and QEMU's all-dirty fallback, (c) with it and the VF's own dirty
    tracking; min/median/max over --runs migrations each, in one run."""
    tap = Tap(os.path.join(args.out, "e2e.tap"))
    results = {"bench": {}}
    for label, with_vf, tracking in BENCH_CONFIGS:
        runs = []
        vfs = (args.vf1, args.vf2) if with_vf else (None, None)
        vm = Vm(args, vfs[0], tracking=tracking)
        if with_vf:
            vm.wait_console(r"^nvp-load: running", args.boot_timeout)
        else:
            vm.wait_console(r"^nvp-l2: up .* no VF", args.boot_timeout)
        for i in range(args.runs):
            dst_vf = vfs[1] if i % 2 == 0 else vfs[0]
            if with_vf:
                vm.wait_progress(args.io_timeout)
            dst = Vm(args, dst_vf, incoming=True, tracking=tracking)
            try:
                info = mig_record(migrate(args, vm, dst, 100 + len(runs)))
            except (RuntimeError, OSError) as e:
                info = {"status": "error", "error": f"{e}; source QEMU exit {vm.proc.poll()}, "
                        f"destination QEMU exit {dst.proc.poll()} (see {vm.name}.stderr)"}
            runs.append(info)
            log(f"bench {label} run {i + 1}: {json.dumps(info)}")
            vm.quit()
            vm = dst
            if info["status"] != "completed":
                break
        vm.quit()
        results["bench"][label] = runs
        ok = all(r["status"] == "completed" for r in runs)
        tap.check(ok, f"bench: {len(runs)} migrations {label}",
                  "" if ok else str(runs[-1].get("error")))
    print(f"\nL2 migration ({args.mem}), QEMU-reported, {args.runs} runs each, ms (min / median / max):",
          flush=True)
    print(f"  {'':12} {'runs':>4} {'total':>22} {'downtime':>20} {'RAM while stopped':>18} {'VF state':>9}")
    med = {}
    for label, runs in results["bench"].items():
        ok = [r for r in runs if r["status"] == "completed"]
        if not ok:
            print(f"  {label:12} none completed")
            continue
        tt = [r["total_ms"] for r in ok]  # completed runs only
        dt = [r["downtime_ms"] for r in ok]
        db = statistics.median([r["ram_downtime_bytes"] or 0 for r in ok])
        vb = statistics.median([r["vfio_bytes"] or 0 for r in ok])
        med[label] = (statistics.median(dt), statistics.median(tt), db)
        print(f"  {label:12} {len(ok):>4} {min(tt):>6} {statistics.median(tt):>7.0f} {max(tt):>7} "
              f"{min(dt):>6} {statistics.median(dt):>6.0f} {max(dt):>6} {db / 2**20:>14.1f} MiB {vb:>7.0f} B")
    base = med.get("without VF")
    summary = {}
    for label in ("VF fallback", "VF tracking"):
        if base is None or label not in med:
            continue
        (d0, t0, b0), (d1, t1, b1) = base, med[label]
        print(f"  {label} / without VF: downtime x{d1 / max(d0, 1):.2f} ({d1 - d0:+.0f} ms), "
              f"total x{t1 / max(t0, 1):.2f}; RAM re-sent while stopped {(b1 - b0) / 2**20:+.1f} MiB")
        summary[label] = {"downtime_ratio": d1 / max(d0, 1), "total_ratio": t1 / max(t0, 1),
                          "extra_downtime_ms": d1 - d0, "extra_stopped_bytes": b1 - b0}
    if "VF tracking" in summary:
        r = summary["VF tracking"]["downtime_ratio"]
        print(f"  goal: downtime with device dirty tracking within 1.10 x without the VF: "
              f"x{r:.2f}, {'met' if r <= 1.10 else 'not met'}")
    results["summary"] = summary
    return tap, results


class OutOfTime(Exception):
    """SIGTERM from e2e.sh's time budget."""


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("mode", choices=["test", "bench"])
    p.add_argument("--vf1", required=True)
    p.add_argument("--vf2", required=True)
    p.add_argument("--kernel", required=True)
    p.add_argument("--initrd", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--mem", default="512M")
    p.add_argument("--region", default="16", help="MiB of the namespace the workload writes")
    p.add_argument("--backend", choices=["iommufd", "legacy"], default="legacy",
                   help="legacy (default): type1 container; iommufd: with --tracking fallback on "
                   "an IOMMU without dirty tracking QEMU 10.0 tracks no device write at all, and "
                   "the guest loses what the VF wrote during pre-copy")
    p.add_argument("--tracking", choices=["device", "fallback"], default="device",
                   help="device (default): QEMU uses the VF's own DMA logging; fallback: it is "
                   "turned off and the container's all-dirty log is read at stop")
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--no-cancel", dest="cancel", action="store_false")
    p.add_argument("--downtime-limit", type=int, default=0, help="ms (QEMU's downtime-limit)")
    p.add_argument("--settle", type=float, default=4,
                   help="seconds the destination runs before its console is checked")
    p.add_argument("--boot-timeout", type=float, default=300)
    p.add_argument("--io-timeout", type=float, default=120)
    p.add_argument("--mig-timeout", type=float, default=300)
    args = p.parse_args()
    if not os.path.exists("/dev/kvm"):
        print("not ok 1 e2e: /dev/kvm exists in L1 (nested SVM)")
        return 1
    # e2e.sh runs this under timeout(1): SIGTERM records why every live L2
    # is stuck and fails the run, so L1's logs still get saved.
    def out_of_time(_sig, _frame):
        raise OutOfTime()
    signal.signal(signal.SIGTERM, out_of_time)
    try:
        tap, results = run_test(args) if args.mode == "test" else run_bench(args)
    except (OutOfTime, RuntimeError, OSError) as e:
        # Out of time, or a QEMU that stopped answering: record why every
        # live L2 is stuck, then end them.
        why = "time budget exhausted" if isinstance(e, OutOfTime) else f"{type(e).__name__}: {e}"
        log(f"run aborted: {why}")
        tap = Tap(os.path.join(args.out, "e2e.tap"))
        results = {"aborted": why}
        tap.check(False, "e2e: the run ends within its time budget, every QEMU answering",
                  why + "; see e2e-diag.txt")
        for vm in Vm.all:
            if vm.proc.poll() is None:
                vm.diag(why)
                vm.proc.kill()
    results["passed"] = tap.n - tap.fail
    results["failed"] = tap.fail
    with open(os.path.join(args.out, "e2e.json"), "w") as f:
        json.dump(results, f, indent=1)
    log(f"{tap.n - tap.fail} passed, {tap.fail} failed")
    return 1 if tap.fail else 0


if __name__ == "__main__":
    sys.exit(main())
