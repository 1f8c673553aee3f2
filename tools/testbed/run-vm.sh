#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# Boot the L1 test VM under TCG and run one guest-side script in it.
#
# usage: run-vm.sh OUTDIR SCRIPT [ARGS...]
#   OUTDIR  host directory shared read-write with the guest (at the same path);
#           the console log goes to OUTDIR/console.log.
#   SCRIPT  a bash script, run as root in the guest with cwd = the repository,
#           the host's root file system (read-only) as its root, and
#           $NVP_OUT = OUTDIR. ARGS are passed on through OUTDIR/cmd.sh.
# environment:
#   NVP_QEMU     QEMU binary for L1 (default: qemu-system-x86_64 on PATH; the
#                TP4159 device model build plugs in here)
#   NVP_KERNEL   bzImage (default: the cached build of tools/testbed/kernel.config)
#   NVP_INITRD   initramfs (default: built into OUTDIR)
#   NVP_TIMEOUT  seconds before the VM is killed (default 600)
#   NVP_MEM      L1 memory (default 4G)
#   NVP_ACCEL    -accel value (default tcg,thread=single: multi-threaded TCG
#                was seen to lose timer wakeups of an idle vCPU, hanging runs)
#   NVP_APPEND   extra L1 kernel command-line words
#   NVP_PF_OPTS  extra properties for the SR-IOV NVMe PF (e.g. hmlms=on)
#   NVP_PF_SRIOV the PF's SR-IOV resource properties, replacing the default
#                "sriov_max_vfs=4,sriov_vq_flexible=8,sriov_vi_flexible=4,
#                sriov_max_vq_per_vf=4,sriov_max_vi_per_vf=2,max_ioqpairs=10,
#                msix_qsize=8" whole (QEMU's rules: vq_flexible >= 2 * max_vfs,
#                max_ioqpairs >= vq_flexible + 2, vi_flexible >= max_vfs,
#                msix_qsize >= vi_flexible + 1, msix_qsize <= 2048)
#   NVP_QEMU_ARGS extra QEMU arguments (word-split), e.g. "-trace pci_nvme_err*"
# A second HMP monitor listens on OUTDIR/monitor.sock (e.g. for "info cpus"
# or "nmi" when a run hangs: socat - UNIX-CONNECT:OUTDIR/monitor.sock).
# The guest's exit status is the script's; 124 = timeout, 125 = no exit seen.
#
# Devices: intel-iommu (interrupt remapping), an NVMe SR-IOV PF at 01:00.0 in
# subsystem subsys0 with 4 VFs possible (8 flexible VQ and 4 flexible VI, at
# most 4 VQ and 2 VI per VF; NVP_PF_SRIOV changes this) and a shared 64 MiB
# namespace, and a plain NVMe controller without SR-IOV at 02:00.0 (the "not
# a VF" case).

. "$(dirname "$0")/lib.sh"

OUT=$(realpath -m "${1:?usage: run-vm.sh OUTDIR SCRIPT [ARGS...]}")
SCRIPT=$(realpath "${2:?usage: run-vm.sh OUTDIR SCRIPT [ARGS...]}")
shift 2
mkdir -p "$OUT"

QEMU=${NVP_QEMU:-qemu-system-x86_64}
KERNEL=${NVP_KERNEL:-$NVP_CACHE/kernel-latest/arch/x86/boot/bzImage}
TIMEOUT=${NVP_TIMEOUT:-600}
MEM=${NVP_MEM:-4G}
[ -f "$KERNEL" ] || die "no kernel at $KERNEL (run tools/testbed/build-kernel.sh)"
INITRD=${NVP_INITRD:-$OUT/initramfs.cpio.gz}
[ -n "${NVP_INITRD:-}" ] || "$NVP_ROOT/tools/testbed/build-initramfs.sh" "$INITRD" >/dev/null

# The command file: the script and its arguments, quoted.
{
	echo "#!/bin/bash"
	printf 'exec /bin/bash %q' "$SCRIPT"
	for a in "$@"; do printf ' %q' "$a"; done
	echo
} >"$OUT/cmd.sh"

# Backing files for the namespaces, fresh each run.
truncate -s 0 "$OUT/ns1.img" "$OUT/ns2.img"
truncate -s 64M "$OUT/ns1.img" "$OUT/ns2.img"

PF_OPTS=${NVP_PF_OPTS:-}
PF_SRIOV=${NVP_PF_SRIOV:-sriov_max_vfs=4,sriov_vq_flexible=8,sriov_vi_flexible=4,sriov_max_vq_per_vf=4,sriov_max_vi_per_vf=2,max_ioqpairs=10,msix_qsize=8}
# no_timer_check: on a loaded host, TCG can miss the boot-time IO-APIC timer
# check's deadline and the kernel panics ("timer doesn't work through
# Interrupt-remapped IO-APIC"); seen at load 7 on 2 cores.
# log_buf_len: the stream fuzzer logs thousands of refusals; the log scan
# after a run must still see everything since the start.
args=(
	-machine q35 -accel "${NVP_ACCEL:-tcg,thread=single}" -cpu "${NVP_CPU:-max,tsc-deadline=off}" -smp 2 -m "$MEM"
	-nographic -no-reboot -nic none -serial mon:stdio
	-L /usr/share/qemu -L /usr/share/seabios
	-kernel "$KERNEL" -initrd "$INITRD"
	-append "console=ttyS0 panic=-1 no_timer_check log_buf_len=16M nvp.cmd=$OUT/cmd.sh nvp.out=$OUT nvp.repo=$NVP_ROOT${NVP_APPEND:+ $NVP_APPEND}"
	-monitor "unix:$OUT/monitor.sock,server=on,wait=off"
	-fsdev "local,id=hostroot,path=/,security_model=none,readonly=on"
	-device "virtio-9p-pci,fsdev=hostroot,mount_tag=hostroot"
	-fsdev "local,id=nvpout,path=$OUT,security_model=none"
	-device "virtio-9p-pci,fsdev=nvpout,mount_tag=nvpout"
	-device intel-iommu,intremap=on
	-device pcie-root-port,id=rp0,chassis=1,slot=1
	-device pcie-root-port,id=rp1,chassis=2,slot=2
	-device nvme-subsys,id=subsys0,nqn=nvp-subsys0
	-device "nvme,id=pf0,serial=nvpf0001,subsys=subsys0,bus=rp0,${PF_SRIOV}${PF_OPTS:+,$PF_OPTS}"
	-drive "file=$OUT/ns1.img,if=none,id=nvm1,format=raw"
	-device nvme-ns,drive=nvm1,nsid=1
	-device nvme,id=plain0,serial=nvplain01,bus=rp1
	-drive "file=$OUT/ns2.img,if=none,id=nvm2,format=raw"
	-device nvme-ns,drive=nvm2,nsid=1,bus=plain0
)
# shellcheck disable=SC2206
[ -z "${NVP_QEMU_ARGS:-}" ] || args+=($NVP_QEMU_ARGS)

t0=$SECONDS
set +e
timeout --foreground -k 10 "$TIMEOUT" "$QEMU" "${args[@]}" </dev/null 2>&1 |
	sed -u 's/\r$//' | tee "$OUT/console.log" | { if [ -n "${NVP_QUIET:-}" ]; then cat >/dev/null; else cat; fi; }
qrc=${PIPESTATUS[0]}
set -e
echo "VM ran for $((SECONDS - t0)) s" >>"$OUT/console.log"
if [ "$qrc" = 124 ] || [ "$qrc" = 137 ]; then
	echo "run-vm: VM timed out after $TIMEOUT s" >&2; exit 124
fi
rc=$(sed -n 's/^NVP-EXIT \([0-9]*\)$/\1/p' "$OUT/console.log" | tail -1)
[ -n "$rc" ] || { echo "run-vm: no exit status from the guest (QEMU rc $qrc)" >&2; exit 125; }
exit "$rc"
