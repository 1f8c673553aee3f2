// SPDX-License-Identifier: GPL-2.0
/*
 * Binding: the driver under test binds VFs only through driver_override,
 * creates a VFIO cdev for each, and leaves nothing behind on unbind; it
 * refuses a function that is not an SR-IOV VF.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "kselftest_harness.h"
#include "nvp_common.h"

#define BIND_CYCLES 5

/* ---- bind/unbind cycles of the VFs ---- */

FIXTURE(bind) {
	char bdf[2][32];
	int nbdf;
};

FIXTURE_SETUP(bind)
{
	const char *vf = nvp_env("NVP_VF"), *vf2 = nvp_env("NVP_VF2");

	if (!vf)
		SKIP(return, "NVP_VF is not set");
	snprintf(self->bdf[0], sizeof(self->bdf[0]), "%s", vf);
	self->nbdf = 1;
	if (vf2) {
		snprintf(self->bdf[1], sizeof(self->bdf[1]), "%s", vf2);
		self->nbdf = 2;
	}
	for (int i = 0; i < self->nbdf; i++) {
		char pf[32];

		ASSERT_TRUE(nvp_pci_is_vf(self->bdf[i])) TH_LOG("%s is not a VF", self->bdf[i]);
		ASSERT_EQ(0, nvp_pci_physfn(self->bdf[i], pf, sizeof(pf))) TH_LOG("%s", nvp_lasterr());
		if (nvp_env("NVP_PF"))
			ASSERT_STREQ(nvp_env("NVP_PF"), pf)
				TH_LOG("%s is a VF of %s, not of NVP_PF", self->bdf[i], pf);
		NVP_ASSERT_BOUND_TO_DRIVER(self->bdf[i]);
	}
}

/* Runs in the parent even if the test crashed: leave every VF bound. */
FIXTURE_TEARDOWN_PARENT(bind)
{
	for (int i = 0; i < self->nbdf; i++) {
		char drv[128];

		if (nvp_pci_driver(self->bdf[i], drv, sizeof(drv)) == 0 &&
		    strcmp(drv, nvp_env_driver()) == 0)
			continue;
		nvp_pci_unbind(self->bdf[i]);
		nvp_pci_set_override(self->bdf[i], nvp_env_driver());
		nvp_pci_drivers_probe(self->bdf[i]);
		EXPECT_EQ(0, nvp_pci_driver(self->bdf[i], drv, sizeof(drv)))
			TH_LOG("could not rebind %s to %s", self->bdf[i], nvp_env_driver());
	}
}

static bool path_exists(const char *p)
{
	struct stat st;

	return stat(p, &st) == 0;
}

TEST_F_TIMEOUT(bind, unbind_bind_cycles, 300)
{
	bool ours = !nvp_driver_is_stock_vfio_pci();

	for (int cycle = 0; cycle < BIND_CYCLES; cycle++) {
		for (int i = 0; i < self->nbdf; i++) {
			const char *bdf = self->bdf[i];
			char drv[128], cdev[64], old_cdev[64], line[1024];
			char prefix[160];
			const char *const bound[] = { prefix, "bound:", NULL };
			struct nvp_vfio v;
			int kmsg, ret;

			ASSERT_EQ(0, nvp_vfio_cdev_path(bdf, old_cdev, sizeof(old_cdev)))
				TH_LOG("cycle %d: %s bound but has no VFIO cdev: %s", cycle, bdf,
				       nvp_lasterr());
			ASSERT_TRUE(path_exists(old_cdev)) TH_LOG("%s missing", old_cdev);

			/* unbind: no driver, no cdev left behind */
			ASSERT_EQ(0, nvp_pci_unbind(bdf)) TH_LOG("%s", nvp_lasterr());
			ret = nvp_pci_driver(bdf, drv, sizeof(drv));
			ASSERT_EQ(-ENOENT, ret)
				TH_LOG("cycle %d: %s still bound to '%s' after unbind", cycle, bdf, drv);
			ASSERT_NE(0, nvp_vfio_cdev_path(bdf, cdev, sizeof(cdev)))
				TH_LOG("cycle %d: %s still has VFIO cdev %s after unbind", cycle, bdf,
				       cdev);
			ASSERT_FALSE(path_exists(old_cdev))
				TH_LOG("cycle %d: %s still exists after unbind", cycle, old_cdev);

			/* bind through driver_override + drivers_probe */
			kmsg = nvp_kmsg_mark();
			ASSERT_LE(0, kmsg) TH_LOG("%s", nvp_lasterr());
			ASSERT_EQ(0, nvp_pci_set_override(bdf, nvp_env_driver()))
				TH_LOG("%s", nvp_lasterr());
			ret = nvp_pci_drivers_probe(bdf);
			EXPECT_EQ(0, ret) TH_LOG("%s", nvp_lasterr());
			ASSERT_EQ(0, nvp_pci_driver(bdf, drv, sizeof(drv)))
				TH_LOG("cycle %d: %s unbound after drivers_probe", cycle, bdf);
			ASSERT_STREQ(nvp_env_driver(), drv)
				TH_LOG("cycle %d: %s bound to %s", cycle, bdf, drv);
			ASSERT_EQ(0, nvp_vfio_cdev_path(bdf, cdev, sizeof(cdev)))
				TH_LOG("cycle %d: %s", cycle, nvp_lasterr());
			ASSERT_TRUE(path_exists(cdev)) TH_LOG("cycle %d: %s missing", cycle, cdev);

			/* our driver says which VF it bound */
			if (ours) {
				snprintf(prefix, sizeof(prefix), "%s %s:", nvp_env_driver(), bdf);
				ret = nvp_kmsg_find_new(kmsg, line, sizeof(line), bound);
				EXPECT_EQ(0, ret) TH_LOG("cycle %d: no '%s bound:' log line", cycle,
							 prefix);
			}
			close(kmsg);

			/* and the device works through its cdev */
			ret = nvp_vfio_open(&v, bdf);
			ASSERT_EQ(0, ret) TH_LOG("cycle %d: %s", cycle, nvp_lasterr());
			nvp_vfio_close(&v);
		}
	}
}

/* ---- refusal of a function that is not a VF ---- */

FIXTURE(nonvf) {
	char bdf[32];
	bool touched;
};

FIXTURE_SETUP(nonvf)
{
	const char *bdf = nvp_env("NVP_NONVF");
	char drv[128];

	if (!bdf)
		SKIP(return, "NVP_NONVF is not set");
	if (nvp_driver_is_stock_vfio_pci())
		SKIP(return, "stock vfio-pci binds any function; nothing to refuse");
	snprintf(self->bdf, sizeof(self->bdf), "%s", bdf);
	ASSERT_TRUE(nvp_pci_exists(bdf)) TH_LOG("NVP_NONVF=%s does not exist", bdf);
	ASSERT_FALSE(nvp_pci_is_vf(bdf)) TH_LOG("NVP_NONVF=%s is a VF", bdf);
	ASSERT_EQ(0, nvp_pci_driver(bdf, drv, sizeof(drv)))
		TH_LOG("NVP_NONVF=%s is not bound (expected nvme)", bdf);
	ASSERT_STREQ("nvme", drv) TH_LOG("NVP_NONVF=%s is bound to %s, expected nvme", bdf, drv);
}

/* Give the function back to nvme whatever happened. */
FIXTURE_TEARDOWN_PARENT(nonvf)
{
	char drv[128];

	if (!self->touched)
		return;
	if (nvp_pci_driver(self->bdf, drv, sizeof(drv)) == 0 && strcmp(drv, "nvme"))
		nvp_pci_unbind(self->bdf);
	EXPECT_EQ(0, nvp_pci_set_override(self->bdf, NULL)) TH_LOG("%s", nvp_lasterr());
	if (nvp_pci_driver(self->bdf, drv, sizeof(drv)) != 0)
		EXPECT_EQ(0, nvp_pci_bind(self->bdf, "nvme")) TH_LOG("%s", nvp_lasterr());
	EXPECT_EQ(0, nvp_pci_driver(self->bdf, drv, sizeof(drv)))
		TH_LOG("%s was not given back to nvme", self->bdf);
	EXPECT_STREQ("nvme", drv);
}

TEST_F_TIMEOUT(nonvf, refused, 120)
{
	char drv[128], cdev[64], line[1024], prefix[160];
	const char *const needles[] = { prefix, NULL };
	int kmsg, ret;

	self->touched = true;
	ASSERT_EQ(0, nvp_pci_unbind(self->bdf)) TH_LOG("%s", nvp_lasterr());
	ASSERT_EQ(-ENOENT, nvp_pci_driver(self->bdf, drv, sizeof(drv)));

	kmsg = nvp_kmsg_mark();
	ASSERT_LE(0, kmsg) TH_LOG("%s", nvp_lasterr());
	ASSERT_EQ(0, nvp_pci_set_override(self->bdf, nvp_env_driver())) TH_LOG("%s", nvp_lasterr());
	ret = nvp_pci_drivers_probe(self->bdf);
	TH_LOG("drivers_probe of %s returned %d", self->bdf, ret);

	ret = nvp_pci_driver(self->bdf, drv, sizeof(drv));
	EXPECT_EQ(-ENOENT, ret) TH_LOG("%s (not a VF) got bound to %s", self->bdf, drv);
	EXPECT_NE(0, nvp_vfio_cdev_path(self->bdf, cdev, sizeof(cdev)))
		TH_LOG("%s (not a VF) has a VFIO cdev %s", self->bdf, cdev);

	snprintf(prefix, sizeof(prefix), "%s %s:", nvp_env_driver(), self->bdf);
	ret = nvp_kmsg_find_new(kmsg, line, sizeof(line), needles);
	close(kmsg);
	EXPECT_EQ(0, ret) TH_LOG("%s logged no reason for refusing %s", nvp_env_driver(),
				 self->bdf);
	if (!ret)
		TH_LOG("refusal: %s", line);
}

TEST_HARNESS_MAIN
