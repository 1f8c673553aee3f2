# SPDX-License-Identifier: GPL-2.0
# Shared helpers for the test-bed scripts: step timing, paths, cache keys.
# Sourced, not executed.

set -euo pipefail

NVP_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
NVP_CACHE=${NVP_CACHE:-$HOME/.cache/nvme-vfio-pci}
NVP_SHARED=${NVP_SHARED:-$NVP_ROOT/../shared}
NVP_LLVM=${NVP_LLVM:--19}
NVP_JOBS=${NVP_JOBS:-$(nproc)}
mkdir -p "$NVP_CACHE"

# step NAME CMD... : run CMD with a visible step name and its elapsed time.
step() {
	local name=$1; shift
	local t0=$SECONDS
	echo "==> [$name] ..."
	"$@"
	local rc=$?
	echo "==> [$name] done in $((SECONDS - t0)) s"
	return $rc
}

die() { echo "error: $*" >&2; exit 1; }

# The Rust toolchain the kernel and module are built with.
nvp_rustc_version() { rustc --version; }

# Directory of the built kernel for the given config fragment(s); prints the path.
# The key hashes every input of the build: source version, fragments, toolchain.
nvp_kernel_key() {
	local src_ver=$1; shift
	{
		echo "$src_ver"
		cat "$@"
		rustc --version
		bindgen --version 2>/dev/null || true
		"clang$NVP_LLVM" --version | head -1
		cat "$NVP_ROOT/tools/testbed/build-kernel.sh"
	} | sha256sum | cut -c1-16
}
