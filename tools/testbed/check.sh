#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# `make check`: every test suite, from a fresh machine or a warm one.
#   set-up -> kernel (cached) -> module (CONFIG_WERROR + clippy) -> rustfmt
#   -> host cargo test + bounded fuzzing -> kselftest build -> VM: KUnit,
#   guest checks, kselftests, kernel-log scan -> VM: device-model
#   conformance -> VM: end-to-end migration of an L2 VM by unmodified QEMU.
# Prints per-suite counts, the time of each phase, and as its last line
# "N passed, N failed". Exits non-zero when anything failed.
. "$(dirname "$0")/lib.sh"
cd "$NVP_ROOT"

BUILD=${BUILD:-$NVP_ROOT/build}
mkdir -p "$BUILD"
SUITES=()
declare -A P F
record() { SUITES+=("$1"); P[$1]=$2; F[$1]=$3; echo "--- suite $1: $2 passed, $3 failed"; }
declare -A T
timed() { local name=$1; shift; local t0=$SECONDS; "$@"; local rc=$?; T[$name]=$((${T[$name]:-0} + SECONDS - t0)); return $rc; }
T_ORDER=(set-up kernel qemu module host-tests fuzz selftests-build vm e2e debug-kernel debug-vm)

# TAP: "ok N" / "not ok N" lines (kselftest and our guest checks); SKIP counts as passed.
# show_diag OUTDIR: what an end-to-end run recorded about a stalled guest
# (tools/testbed/guest/e2e.py diag()), so a CI log alone explains a failure.
show_diag() {
	[ -s "$1/e2e-diag.txt" ] || return 0
	echo "--- $1/e2e-diag.txt:"
	head -n 200 "$1/e2e-diag.txt" | sed 's/^/  | /'
}
tap_count() { # FILE -> "pass fail"
	local f=$1
	[ -f "$f" ] || { echo "0 1"; return; }
	local p fl
	p=$(grep -cE '^(# )?ok [0-9]+' "$f" || true)
	fl=$(grep -cE '^(# )?not ok [0-9]+' "$f" || true)
	echo "$p $fl"
}

timed set-up step "set-up" "$NVP_ROOT/tools/testbed/setup.sh" || die "set-up failed"
t0=$SECONDS
KDIR=$("$NVP_ROOT/tools/testbed/build-kernel.sh" | tail -1) || die "kernel build failed"
T[kernel]=$((SECONDS - t0))
[ -d "$KDIR" ] || die "kernel build failed"

# The TP4159 device model: the PF of the test VM runs on it.
t0=$SECONDS
QEMU=$("$NVP_ROOT/tools/qemu/build-qemu.sh" | tail -1) || die "QEMU device model build failed"
T[qemu]=$((SECONDS - t0))
[ -x "$QEMU" ] || die "QEMU device model build failed"
export NVP_QEMU=$QEMU NVP_PF_OPTS=hmlms=on

build_module() { make -s -C "$KDIR" M="$NVP_ROOT" LLVM="$NVP_LLVM" CLIPPY=1 modules; }
if timed module step "module (CONFIG_WERROR, clippy)" build_module; then
	record module-build 1 0
else
	record module-build 0 1
fi

fmt_check() { rustfmt --check --edition 2021 --config-path "$(sed -n 's|^include \(.*\)/Makefile$|\1|p' "$KDIR/Makefile")/.rustfmt.toml" $(ls rust/*.rs rust/protocol/*.rs | grep -v nvp_bindings.rs); }
if timed module step "rustfmt --check" fmt_check; then record rustfmt 1 0; else record rustfmt 0 1; fi

host_tests() { (cd tools/nvp-proto && cargo test 2>&1) | tee "$BUILD/cargo-test.log"; }
timed host-tests step "host cargo test (protocol)" host_tests
read -r hp hf < <(awk '/^test result:/ {p += $4; f += $6} END {print p+0, f+0}' "$BUILD/cargo-test.log")
grep -q "^test result:" "$BUILD/cargo-test.log" || hf=$((hf + 1))
record cargo-test "$hp" "$hf"
host_clippy() { (cd tools/nvp-proto && cargo clippy -q --all-targets -- -D warnings); }
if timed host-tests step "host cargo clippy (kernel lint set)" host_clippy; then record host-clippy 1 0; else record host-clippy 0 1; fi

# Host fuzzing of the stream parser and TP4159 decoders, bounded (make fuzz runs longer).
fuzz() { "$NVP_ROOT/tools/fuzz/run-fuzz.sh" "${NVP_FUZZ_SECONDS:-30}" 2>&1 | tee "$BUILD/fuzz.log"; }
timed fuzz step "host fuzzing (${NVP_FUZZ_SECONDS:-30} s)" fuzz
fp=$(grep -cE '^fuzz: [a-z0-9_]+ [0-9]+ runs in .*, 0 crashes' "$BUILD/fuzz.log" || true)
ff=$(grep -cE '^fuzz: .*(CRASHED|no .Done. line)' "$BUILD/fuzz.log" || true)
[ "$fp" -gt 0 ] || ff=$((ff + 1))
record fuzz "$fp" "$ff"

if timed selftests-build step "kselftests build" "$NVP_ROOT/tools/testbed/build-selftests.sh" "$BUILD"; then
	record selftests-build 1 0
else
	record selftests-build 0 1
fi

VMOUT=$BUILD/vm-check
rm -rf "$VMOUT"; mkdir -p "$VMOUT"
vm_rc=0
NVP_QUIET=1 NVP_SELFTESTS=$BUILD/selftests timed vm step "VM: boot, KUnit, guest checks, kselftests" \
	"$NVP_ROOT/tools/testbed/run-vm.sh" "$VMOUT" "$NVP_ROOT/tools/testbed/guest/check.sh" || vm_rc=$?
echo "VM exit status $vm_rc; console log: $VMOUT/console.log"
grep -E "^(ok|not ok|# )" "$VMOUT/console.log" | grep -vE "^# (PASSED|FAILED|RUN|OK|SKIP|Totals)" | tail -n 80 || true

LMOUT=$BUILD/vm-lm
rm -rf "$LMOUT"; mkdir -p "$LMOUT"
lm_rc=0
NVP_QUIET=1 timed vm step "VM: TP4159 device-model conformance (lm_test)" \
	"$NVP_ROOT/tools/qemu/tests/run-lm-test.sh" "$LMOUT" || lm_rc=$?

# End to end: Debian's unmodified QEMU migrates an L2 VM (KVM inside L1) with
# its VF, VF1 -> VF2 -> VF1 and a cancelled migration, guest I/O verified.
E2EOUT=$BUILD/vm-e2e
rm -rf "$E2EOUT"; mkdir -p "$E2EOUT"
e2e_rc=0
NVP_QUIET=1 NVP_TIMEOUT=${NVP_E2E_TIMEOUT:-960} timed e2e step "VM: end-to-end L2 migration (unmodified QEMU)" \
	"$NVP_ROOT/tools/testbed/run-e2e.sh" "$E2EOUT" test || e2e_rc=$?
grep -E "^(ok|not ok) " "$E2EOUT/e2e.tap" 2>/dev/null || true
show_diag "$E2EOUT"
# The same through iommufd: safe on this bed (an IOMMU without dirty
# tracking) only because QEMU uses the VF's device dirty tracking.
E2EIOUT=$BUILD/vm-e2e-iommufd
rm -rf "$E2EIOUT"; mkdir -p "$E2EIOUT"
e2ei_rc=0
NVP_QUIET=1 NVP_TIMEOUT=${NVP_E2E_TIMEOUT:-960} timed e2e step "VM: end-to-end L2 migration, iommufd backend" \
	"$NVP_ROOT/tools/testbed/run-e2e.sh" "$E2EIOUT" test --backend iommufd || e2ei_rc=$?
grep -E "^not ok " "$E2EIOUT/e2e.tap" 2>/dev/null || true
show_diag "$E2EIOUT"

# KUnit: the suite summaries the module printed when it loaded.
kunit_count() { # KUNIT_LOG -> "pass fail"
	awk '/# nvme_vfio_pci[a-z_]*: pass:/ {
		for (i = 1; i <= NF; i++) { if ($i ~ /^pass:/) p += substr($i, 6); if ($i ~ /^fail:/) f += substr($i, 6) } }
		END {print p+0, f+0}' "$1" 2>/dev/null || echo "0 0"
}
# record_vm PREFIX OUTDIR RC: KUnit, guest checks and kselftests of one VM run.
record_vm() {
	local pre=$1 out=$2 rc=$3 kp kf gp gf sp sf
	read -r kp kf < <(kunit_count "$out/kunit.log")
	[ "$kp" -gt 0 ] || kf=$((kf + 1))   # no KUnit result at all is a failure
	record "${pre}kunit" "$kp" "$kf"
	read -r gp gf < <(tap_count "$out/guest-checks.tap"); record "${pre}guest-checks" "$gp" "$gf"
	read -r sp sf < <(tap_count "$out/kselftest.tap"); [ "$sp" -gt 0 ] || sf=$((sf + 1)); record "${pre}kselftest" "$sp" "$sf"
	[ "$rc" = 0 ] || record "${pre}vm-exit" 0 1
}
record_vm "" "$VMOUT" "$vm_rc"
read -r lp lf < <(tap_count "$LMOUT/lm_test.tap"); [ "$lp" -gt 0 ] || lf=$((lf + 1)); record device-model "$lp" "$lf"
[ "$lm_rc" = 0 ] || [ "$lf" -gt 0 ] || record device-model-exit 0 1
read -r ep ef < <(tap_count "$E2EOUT/e2e.tap"); [ "$ep" -gt 0 ] || ef=$((ef + 1)); record e2e "$ep" "$ef"
[ "$e2e_rc" = 0 ] || [ "$ef" -gt 0 ] || record e2e-exit 0 1
read -r ep ef < <(tap_count "$E2EIOUT/e2e.tap"); [ "$ep" -gt 0 ] || ef=$((ef + 1)); record e2e-iommufd "$ep" "$ef"
[ "$e2ei_rc" = 0 ] || [ "$ef" -gt 0 ] || record e2e-iommufd-exit 0 1

# The debug kernel (tools/testbed/kernel-debug.config: KASAN, lockdep,
# DEBUG_ATOMIC_SLEEP, kmemleak, DEBUG_LIST, PROVE_RCU, UBSAN) runs the VM
# suites once more: the module built against it, the guest checks and
# kselftests, and the end-to-end migration with L1 on the debug kernel.
# Their kernel-log scans fail on any report, and a kmemleak scan runs before
# power-off. NVP_DEBUG_KERNEL=0 skips this (make check-fast).
if [ "${NVP_DEBUG_KERNEL:-1}" != 0 ]; then
	t0=$SECONDS
	DKDIR=$("$NVP_ROOT/tools/testbed/build-debug-kernel.sh" | tail -1) || DKDIR=
	T[debug-kernel]=$((SECONDS - t0))
	DMOD=$BUILD/debug-module
	debug_module() {
		rm -rf "$DMOD" && mkdir -p "$DMOD" &&
			git ls-files -z Kbuild rust include | xargs -0 cp --parents -t "$DMOD" &&
			make -s -C "$DKDIR" M="$DMOD" LLVM="$NVP_LLVM" modules
	}
	if [ -n "$DKDIR" ] && [ -d "$DKDIR" ] && timed debug-kernel step "module on the debug kernel" debug_module; then
		record debug-module-build 1 0
		DVMOUT=$BUILD/vm-debug
		rm -rf "$DVMOUT"; mkdir -p "$DVMOUT"
		echo "NVP_MODULE=$DMOD/nvme_vfio_pci.ko" >"$DVMOUT/guest.env"
		dvm_rc=0
		NVP_KERNEL=$DKDIR/arch/x86/boot/bzImage NVP_QUIET=1 NVP_SELFTESTS=$BUILD/selftests NVP_TIMEOUT=1200 \
			timed debug-vm step "debug kernel VM: KUnit, guest checks, kselftests" \
			"$NVP_ROOT/tools/testbed/run-vm.sh" "$DVMOUT" "$NVP_ROOT/tools/testbed/guest/check.sh" || dvm_rc=$?
		grep -E "^(not ok|kmemleak:)" "$DVMOUT/console.log" | head -20 || true
		record_vm debug- "$DVMOUT" "$dvm_rc"
		DE2EOUT=$BUILD/vm-debug-e2e
		rm -rf "$DE2EOUT"; mkdir -p "$DE2EOUT"
		# e2e.py's budget stays below NVP_TIMEOUT so a stuck run keeps its logs.
		printf 'NVP_MODULE=%s\nNVP_E2E_BUDGET=1380\n' "$DMOD/nvme_vfio_pci.ko" >"$DE2EOUT/guest.env"
		de2e_rc=0
		NVP_KERNEL=$DKDIR/arch/x86/boot/bzImage NVP_QUIET=1 NVP_TIMEOUT=1500 \
			timed debug-vm step "debug kernel VM: end-to-end L2 migration" \
			"$NVP_ROOT/tools/testbed/run-e2e.sh" "$DE2EOUT" test || de2e_rc=$?
		grep -E "^not ok " "$DE2EOUT/e2e.tap" 2>/dev/null || true
		show_diag "$DE2EOUT"
		read -r ep ef < <(tap_count "$DE2EOUT/e2e.tap"); [ "$ep" -gt 0 ] || ef=$((ef + 1)); record debug-e2e "$ep" "$ef"
		[ "$de2e_rc" = 0 ] || [ "$ef" -gt 0 ] || record debug-e2e-exit 0 1
	else
		record debug-module-build 0 1
	fi
fi

echo
echo "Time per phase:"
for t in "${T_ORDER[@]}"; do printf '  %-16s %5s s\n' "$t" "${T[$t]:-0}"; done
echo "Suites:"
tp=0; tf=0
for s in "${SUITES[@]}"; do
	printf '  %-16s %4d passed, %d failed\n' "$s" "${P[$s]}" "${F[$s]}"
	tp=$((tp + P[$s])); tf=$((tf + F[$s]))
done
echo "$tp passed, $tf failed"
[ "$tf" = 0 ]
