// SPDX-License-Identifier: GPL-2.0
/*
 * The VFIO uAPI of a VF bound to the driver under test: opened through
 * /dev/vfio/devices/vfioN and iommufd, device info, region info, config
 * space, BAR0 mmap, DMA map/unmap.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <linux/pci_regs.h>

#include "kselftest_harness.h"
#include "nvp_common.h"

FIXTURE(vfio) {
	struct nvp_vfio v;
	const char *bdf;
};

FIXTURE_VARIANT(vfio) {
	const char *env;
};

FIXTURE_VARIANT_ADD(vfio, vf) { .env = "NVP_VF" };
FIXTURE_VARIANT_ADD(vfio, vf2) { .env = "NVP_VF2" };

FIXTURE_SETUP(vfio)
{
	NVP_SETUP_VF(self, variant);
}

FIXTURE_TEARDOWN(vfio)
{
	nvp_vfio_close(&self->v);
}

/* The cdev we opened is the one sysfs names for this BDF, and it is a char device. */
TEST_F(vfio, cdev_and_iommufd)
{
	struct vfio_device_bind_iommufd bind = { .argsz = sizeof(bind) };
	char sysdev[256], devno[32];
	unsigned int maj, min, dmaj, dmin;
	struct stat st;

	ASSERT_LE(0, self->v.devfd);
	ASSERT_LE(0, self->v.iommufd);
	ASSERT_EQ(0, strncmp(self->v.cdev, "/dev/vfio/devices/vfio", 22)) TH_LOG("%s", self->v.cdev);
	ASSERT_EQ(0, stat(self->v.cdev, &st));
	ASSERT_TRUE(S_ISCHR(st.st_mode));

	snprintf(sysdev, sizeof(sysdev), "vfio-dev/%s/dev", self->v.cdev + 18);
	ASSERT_EQ(0, nvp_pci_read_attr(self->bdf, sysdev, devno, sizeof(devno)))
		TH_LOG("%s", nvp_lasterr());
	ASSERT_EQ(2, sscanf(devno, "%u:%u", &maj, &min));
	dmaj = major(st.st_rdev);
	dmin = minor(st.st_rdev);
	EXPECT_EQ(maj, dmaj);
	EXPECT_EQ(min, dmin);

	/* Already bound: a second bind of the same fd is refused. */
	bind.iommufd = self->v.iommufd;
	EXPECT_NE(0, ioctl(self->v.devfd, VFIO_DEVICE_BIND_IOMMUFD, &bind));
	TH_LOG("%s opened as %s, devid %u, ioas %u", self->bdf, self->v.cdev, self->v.devid,
	       self->v.ioas_id);
}

TEST_F(vfio, device_info)
{
	struct vfio_device_info *i = &self->v.info;

	EXPECT_TRUE(!!(i->flags & VFIO_DEVICE_FLAGS_PCI)) TH_LOG("flags 0x%x", i->flags);
	EXPECT_TRUE(!!(i->flags & VFIO_DEVICE_FLAGS_RESET)) TH_LOG("flags 0x%x", i->flags);
	EXPECT_LE((uint32_t)VFIO_PCI_NUM_REGIONS, i->num_regions);
	EXPECT_LE((uint32_t)VFIO_PCI_NUM_IRQS, i->num_irqs);
}

TEST_F(vfio, bar0_region)
{
	struct vfio_region_info *r = &self->v.bar0_info;
	uint64_t sysfs_size = 0;
	uint32_t cap_lo, vs;

	ASSERT_EQ(0, nvp_pci_bar_size(self->bdf, 0, &sysfs_size)) TH_LOG("%s", nvp_lasterr());
	ASSERT_NE(0ull, sysfs_size) TH_LOG("sysfs says BAR0 is unimplemented");
	EXPECT_EQ(sysfs_size, (uint64_t)r->size);
	EXPECT_EQ(0ull, r->size & (r->size - 1)) TH_LOG("BAR0 size 0x%llx", (unsigned long long)r->size);
	EXPECT_TRUE(!!(r->flags & VFIO_REGION_INFO_FLAG_READ)) TH_LOG("flags 0x%x", r->flags);
	EXPECT_TRUE(!!(r->flags & VFIO_REGION_INFO_FLAG_WRITE)) TH_LOG("flags 0x%x", r->flags);
	ASSERT_TRUE(!!(r->flags & VFIO_REGION_INFO_FLAG_MMAP)) TH_LOG("flags 0x%x", r->flags);

	/* The mapping shows NVMe registers, and agrees with read() on the region. */
	ASSERT_EQ(0, nvp_vfio_map_bar0(&self->v)) TH_LOG("%s", nvp_lasterr());
	vs = *(volatile uint32_t *)(self->v.bar0 + NVME_REG_VS);
	EXPECT_LE(1u, vs >> 16) TH_LOG("NVMe VS 0x%08x", vs);
	EXPECT_NE(0xffffffffu, vs);
	ASSERT_EQ(4, pread(self->v.devfd, &cap_lo, 4, (off_t)r->offset + NVME_REG_CAP));
	EXPECT_EQ(*(volatile uint32_t *)(self->v.bar0 + NVME_REG_CAP), cap_lo);
}

TEST_F(vfio, config_region)
{
	struct vfio_region_info *r = &self->v.cfg_info;
	unsigned long vendor, device;
	uint16_t id[2];
	uint8_t class[3];

	EXPECT_LE(256ull, (uint64_t)r->size);
	EXPECT_TRUE(!!(r->flags & VFIO_REGION_INFO_FLAG_READ));
	EXPECT_TRUE(!!(r->flags & VFIO_REGION_INFO_FLAG_WRITE));
	ASSERT_EQ(0, nvp_pci_read_hex(self->bdf, "vendor", &vendor)) TH_LOG("%s", nvp_lasterr());
	ASSERT_EQ(0, nvp_pci_read_hex(self->bdf, "device", &device)) TH_LOG("%s", nvp_lasterr());
	ASSERT_EQ(0, nvp_cfg_read(&self->v, PCI_VENDOR_ID, id, sizeof(id))) TH_LOG("%s", nvp_lasterr());
	EXPECT_EQ(vendor, id[0]);
	EXPECT_EQ(device, id[1]);
	/* NVMe: class 01h, subclass 08h, prog-if 02h */
	ASSERT_EQ(0, nvp_cfg_read(&self->v, PCI_CLASS_PROG, class, sizeof(class)));
	EXPECT_EQ(0x02, class[0]);
	EXPECT_EQ(0x08, class[1]);
	EXPECT_EQ(0x01, class[2]);
	/* Bus mastering can be switched through the config region. */
	ASSERT_EQ(0, nvp_bus_master(&self->v, true)) TH_LOG("%s", nvp_lasterr());
	ASSERT_EQ(0, nvp_bus_master(&self->v, false)) TH_LOG("%s", nvp_lasterr());
}

#define DMA_IOVA 0x200000000ull	/* 8 GiB */
#define DMA_LEN  (2u << 20)

TEST_F(vfio, dma_map_unmap)
{
	uint64_t unmapped = 0;
	bool ok = false;
	void *mem;

	ASSERT_EQ(0, nvp_iova_allowed(&self->v, DMA_IOVA, DMA_LEN, &ok)) TH_LOG("%s", nvp_lasterr());
	ASSERT_TRUE(ok) TH_LOG("%s", nvp_lasterr());

	mem = mmap(NULL, DMA_LEN, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, mem);
	memset(mem, 0x5a, DMA_LEN);

	ASSERT_EQ(0, nvp_dma_map(&self->v, mem, DMA_IOVA, DMA_LEN)) TH_LOG("%s", nvp_lasterr());
	/* The IOVA range is now taken. */
	EXPECT_EQ(-EEXIST, nvp_dma_map(&self->v, mem, DMA_IOVA, DMA_LEN));
	EXPECT_EQ(-EEXIST, nvp_dma_map(&self->v, mem, DMA_IOVA + DMA_LEN - 4096, 8192));
	/* Unmap returns the length it removed ... */
	ASSERT_EQ(0, nvp_dma_unmap(&self->v, DMA_IOVA, DMA_LEN, &unmapped)) TH_LOG("%s", nvp_lasterr());
	EXPECT_EQ(DMA_LEN, unmapped);
	/* ... after which nothing is left there, */
	EXPECT_EQ(-ENOENT, nvp_dma_unmap(&self->v, DMA_IOVA, DMA_LEN, &unmapped));
	/* and the range can be mapped again, in pieces, and unmapped in one go. */
	ASSERT_EQ(0, nvp_dma_map(&self->v, mem, DMA_IOVA, DMA_LEN / 2)) TH_LOG("%s", nvp_lasterr());
	ASSERT_EQ(0, nvp_dma_map(&self->v, (char *)mem + DMA_LEN / 2, DMA_IOVA + DMA_LEN / 2,
				 DMA_LEN / 2)) TH_LOG("%s", nvp_lasterr());
	ASSERT_EQ(0, nvp_dma_unmap(&self->v, DMA_IOVA, DMA_LEN, &unmapped)) TH_LOG("%s", nvp_lasterr());
	EXPECT_EQ(DMA_LEN, unmapped);
	munmap(mem, DMA_LEN);
}

TEST_HARNESS_MAIN
