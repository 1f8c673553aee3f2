/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Shared bits of the nvme_vfio_pci kselftests: the environment contract of
 * the in-VM runner.
 *
 *   NVP_VF      BDF of a provisioned (online) VF bound to the driver under test
 *   NVP_VF2     a second such VF (optional)
 *   NVP_VF3, NVP_VF4  a third and fourth (optional; nvp_fault_test's
 *               four-VF case SKIPs without them)
 *   NVP_PF      the PF's BDF (bound to nvme; the PF-loss test unbinds and
 *               rebinds it, and re-provisions the VFs)
 *   NVP_NONVF   BDF of a plain NVMe function without SR-IOV, bound to nvme
 *               (optional)
 *   NVP_VF_VQ   VQ resources the runner gave NVP_VF (optional; the many-queue
 *               migration test checks the VF reports them)
 *   NVP_DRIVER  the driver under test (default nvme_vfio_pci); with
 *               "vfio-pci" the tests that need our driver's log SKIP.
 */
#ifndef NVP_COMMON_H
#define NVP_COMMON_H

#include "lib/pci_sysfs.h"
#include "lib/vfio_nvme.h"
#include "lib/vfio_mig.h"

/*
 * In a test or fixture setup: fail with a message if the function at @bdf is
 * not bound to the driver under test.
 */
#define NVP_ASSERT_BOUND_TO_DRIVER(bdf) do { \
	char __drv[128]; \
	int __r = nvp_pci_driver((bdf), __drv, sizeof(__drv)); \
	ASSERT_EQ(0, __r) TH_LOG("%s is not bound to any driver (%s); expected %s", \
				 (bdf), nvp_lasterr(), nvp_env_driver()); \
	ASSERT_STREQ(nvp_env_driver(), __drv) \
		TH_LOG("%s is bound to %s, expected %s", (bdf), __drv, nvp_env_driver()); \
} while (0)

/*
 * The setup every per-VF fixture starts with: the VF named by the
 * variant's environment variable (skip when unset), bound to the driver
 * under test, opened through VFIO (cdev + iommufd). The fixture has
 * `struct nvp_vfio v` and `const char *bdf`; the variant has `const char
 * *env`.
 */
#define NVP_SETUP_VF(self, variant) do { \
	(self)->v.devfd = -1; \
	(self)->v.iommufd = -1; \
	(self)->bdf = nvp_env((variant)->env); \
	if (!(self)->bdf) \
		SKIP(return, "%s is not set", (variant)->env); \
	NVP_ASSERT_BOUND_TO_DRIVER((self)->bdf); \
	ASSERT_EQ(0, nvp_vfio_open(&(self)->v, (self)->bdf)) TH_LOG("%s", nvp_lasterr()); \
} while (0)

/*
 * In a fixture setup: skip when VF @v (struct nvp_vfio *) offers no
 * migration (a PF without TP4159), unless NVP_EXPECT_MIGRATION=1, when that
 * fails.
 */
#define NVP_REQUIRE_MIGRATION(v) do { \
	const char *__expect = getenv("NVP_EXPECT_MIGRATION"); \
	uint64_t __flags = 0; \
	int __r = nvp_mig_flags((v), &__flags); \
	if (__r && !(__expect && !strcmp(__expect, "1"))) \
		SKIP(return, "%s offers no migration (%s): PF without TP4159", \
		     (v)->bdf, strerror(-__r)); \
	ASSERT_EQ(0, __r) TH_LOG("VFIO_DEVICE_FEATURE_MIGRATION: %s", strerror(-__r)); \
	ASSERT_TRUE((__flags & VFIO_MIGRATION_STOP_COPY) != 0); \
} while (0)

#endif
