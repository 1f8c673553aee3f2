# SPDX-License-Identifier: GPL-2.0
# nvme-vfio-pci: top-level entry points.
#
#   make demo    set up, build everything, boot the test VM, bind a VF, show it
#   make check   every test suite; ends with "N passed, N failed"
#   make check-fast   the same without the debug-kernel stage
#   make module  build nvme_vfio_pci.ko against the cached test kernel
#   make bench   stop-copy breakdown vs NVMe passthrough (prints numbers)
#
# Big builds (kernel, QEMU) are cached under ~/.cache/nvme-vfio-pci/.

LLVM  ?= -19
NVP_CACHE ?= $(HOME)/.cache/nvme-vfio-pci
KDIR  ?= $(NVP_CACHE)/kernel-latest
BUILD ?= $(CURDIR)/build

FUZZ_SECONDS ?= 600

.PHONY: all setup kernel qemu module clippy rustfmt host-test selftests check check-fast demo bench bench-e2e fuzz clean

all: module

setup:
	tools/testbed/setup.sh

kernel: setup
	tools/testbed/build-kernel.sh

qemu: setup
	tools/qemu/build-qemu.sh

bench:
	tools/bench/run-mig-bench.sh

bench-e2e:
	tools/bench/run-e2e-bench.sh

fuzz:
	tools/fuzz/run-fuzz.sh $(FUZZ_SECONDS)

module:
	$(MAKE) -C $(KDIR) M=$(CURDIR) LLVM=$(LLVM) modules

clippy:
	$(MAKE) -C $(KDIR) M=$(CURDIR) LLVM=$(LLVM) CLIPPY=1 modules

host-test:
	cd tools/nvp-proto && cargo test

selftests:
	tools/testbed/build-selftests.sh $(BUILD)

check:
	tools/testbed/check.sh

check-fast:
	NVP_DEBUG_KERNEL=0 tools/testbed/check.sh

demo:
	tools/testbed/demo.sh

clean:
	-$(MAKE) -C $(KDIR) M=$(CURDIR) LLVM=$(LLVM) clean
	rm -rf $(BUILD) tools/nvp-proto/target
