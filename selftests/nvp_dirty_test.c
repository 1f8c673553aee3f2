// SPDX-License-Identifier: GPL-2.0
/*
 * Device dirty-page tracking through the VFIO uAPI only
 * (VFIO_DEVICE_FEATURE_DMA_LOGGING_START / REPORT / STOP): a userspace NVMe
 * driver on the VF (NVP_VF) reads blocks into known IOVAs, and the report
 * must show exactly those pages plus the I/O completion queue's page (the
 * device writes the CQE there); extra pages are allowed only inside the
 * granularity the driver reported back. A second report is empty (report
 * and clear). A report taken after the device was stopped (STOP state)
 * shows what it wrote before. More ranges than the device tracks (MAXR 16)
 * are accepted and merged. A report after STOP of the logging fails.
 *
 * The expected offer is read from the PF (NVP_PF) itself: its Identify
 * Controller carries the NVPT block at byte 3072 exactly when the device
 * model tracks. With NVPT the driver must offer the feature (PROBE), without
 * it must not; without NVP_PF or without migration the tests SKIP.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include "kselftest_harness.h"
#include "nvp_common.h"
#include "lib/nvme_pf.h"
#include "lib/vfio_mig.h"

#define NSID		1
#define PG		4096ull
/* Data pages, away from the queues (which are at NVP_IOVA_BASE_DEFAULT). */
#define DATA_IOVA	(NVP_IOVA_BASE_DEFAULT + 0x1000000ull)
#define DATA_PAGES	96u
#define MANY_RANGES	40u	/* more than the device's MAXR (16) */

/* Feature ioctl with a payload; returns 0 or -errno. */
static int feature(struct nvp_vfio *v, uint32_t flags, void *payload, size_t len)
{
	size_t sz = sizeof(struct vfio_device_feature) + len;
	struct vfio_device_feature *f = calloc(1, sz);
	int ret = 0;

	if (!f)
		return -ENOMEM;
	f->argsz = sz;
	f->flags = flags;
	if (len)
		memcpy(f->data, payload, len);
	if (ioctl(v->devfd, VFIO_DEVICE_FEATURE, f))
		ret = -errno;
	else if (len)
		memcpy(payload, f->data, len);
	free(f);
	return ret;
}

/* DMA_LOGGING_START over @n ranges; *page_size in and out. */
static int log_start(struct nvp_vfio *v, const struct vfio_device_feature_dma_logging_range *r,
		     uint32_t n, uint64_t *page_size)
{
	struct vfio_device_feature_dma_logging_control c = {
		.page_size = *page_size, .num_ranges = n, .ranges = (uintptr_t)r,
	};
	int ret = feature(v, VFIO_DEVICE_FEATURE_SET | VFIO_DEVICE_FEATURE_DMA_LOGGING_START,
			  &c, sizeof(c));

	if (!ret)
		*page_size = c.page_size;
	return ret;
}

static int log_stop(struct nvp_vfio *v)
{
	return feature(v, VFIO_DEVICE_FEATURE_SET | VFIO_DEVICE_FEATURE_DMA_LOGGING_STOP, NULL, 0);
}

/* DMA_LOGGING_REPORT of [iova, iova + len) at 4 KiB into @bm (zeroed first). */
static int log_report(struct nvp_vfio *v, uint64_t iova, uint64_t len, uint64_t *bm)
{
	struct vfio_device_feature_dma_logging_report r = {
		.iova = iova, .length = len, .page_size = PG, .bitmap = (uintptr_t)bm,
	};

	memset(bm, 0, ((len / PG + 63) / 64) * 8);
	return feature(v, VFIO_DEVICE_FEATURE_GET | VFIO_DEVICE_FEATURE_DMA_LOGGING_REPORT,
		       &r, sizeof(r));
}

static bool bit(const uint64_t *bm, uint64_t i)
{
	return bm[i / 64] >> (i % 64) & 1;
}

FIXTURE(dirty) {
	struct nvp_vfio v;
	const char *bdf;
	struct nvp_nvme n;
	uint8_t *data;
	uint64_t *bm;		/* one bit per 4 KiB page of the largest report */
	uint64_t lba0;
};

FIXTURE_VARIANT(dirty) {
	const char *env;
};

FIXTURE_VARIANT_ADD(dirty, vf1) {
	.env = "NVP_VF",
};

/* Does the PF's Identify Controller carry the NVPT block? 1, 0, or -errno. */
static int pf_has_nvpt(const char *pf)
{
	uint8_t id[4096];
	int fd = nvp_pf_open(pf, 5000), ret;

	if (fd < 0)
		return fd;
	ret = nvp_pf_identify_ctrl(fd, id);
	close(fd);
	if (ret)
		return ret < 0 ? ret : -EIO;
	return !memcmp(id + 3072, "NVPT", 4) && id[3076] == 1;
}

FIXTURE_SETUP(dirty)
{
	const char *pf = nvp_env("NVP_PF");
	uint64_t flags = 0;
	bool ok = false;
	int nvpt, ret;

	self->data = NULL;
	self->bm = NULL;
	NVP_SETUP_VF(self, variant);
	if (nvp_mig_flags(&self->v, &flags))
		SKIP(return, "%s offers no migration: PF without TP4159", self->bdf);
	if (!pf)
		SKIP(return, "NVP_PF is not set");
	nvpt = pf_has_nvpt(pf);
	ASSERT_LE(0, nvpt) TH_LOG("Identify Controller on the PF: %s", nvp_lasterr());
	ret = feature(&self->v, VFIO_DEVICE_FEATURE_PROBE | VFIO_DEVICE_FEATURE_SET |
		      VFIO_DEVICE_FEATURE_DMA_LOGGING_START, NULL, 0);
	if (!nvpt) {
		ASSERT_EQ(-ENOTTY, ret) TH_LOG("dirty tracking offered without NVPT on the PF");
		SKIP(return, "the PF does not advertise NVPT tracking");
	}
	ASSERT_EQ(0, ret) TH_LOG("PF advertises NVPT, DMA_LOGGING_START PROBE: %s",
				 strerror(-ret));

	ASSERT_EQ(0, nvp_iova_allowed(&self->v, DATA_IOVA, DATA_PAGES * PG, &ok));
	ASSERT_TRUE(ok);
	ASSERT_EQ(0, nvp_nvme_bringup(&self->n, &self->v, NVP_IOVA_BASE_DEFAULT, NSID))
		TH_LOG("%s", nvp_lasterr());
	ASSERT_GT(self->n.nsze, (uint64_t)1024);
	self->lba0 = self->n.nsze / 3;
	self->data = nvp_dma_alloc(&self->v, DATA_IOVA, DATA_PAGES * PG);
	ASSERT_NE(NULL, self->data) TH_LOG("%s", nvp_lasterr());
	/* Enough bits for the whole data area or the queue span. */
	self->bm = calloc(1, 4096);
	ASSERT_NE(NULL, self->bm);
}

FIXTURE_TEARDOWN(dirty)
{
	if (self->v.devfd >= 0) {
		log_stop(&self->v);
		if (nvp_mig_set(&self->v, VFIO_DEVICE_STATE_RUNNING, NULL))
			nvp_vfio_reset(&self->v);
	}
	if (self->n.v && self->n.v->bar0)
		nvp_nvme_disable(&self->n);
	nvp_dma_free(&self->v, self->data, DATA_IOVA, DATA_PAGES * PG);
	free(self->bm);
	nvp_nvme_fini(&self->n);
	nvp_vfio_close(&self->v);
}

/* The two ranges a VMM would give: the queue span and the data area. */
static void two_ranges(struct vfio_device_feature_dma_logging_range r[2])
{
	r[0].iova = NVP_IOVA_BASE_DEFAULT;
	r[0].length = (NVP_IOVA_SPAN + PG - 1) & ~(PG - 1);
	r[1].iova = DATA_IOVA;
	r[1].length = DATA_PAGES * PG;
}

/* Read one block into data page @pg. */
static int read_into(FIXTURE_DATA(dirty) *self, uint32_t pg)
{
	memset(self->data + pg * PG, 0, PG);
	return nvp_nvme_rw_q(&self->n, &self->n.ioq[0], false, NSID, self->lba0 + pg,
			     DATA_IOVA + pg * PG);
}

/*
 * Checks a report of [@iova, @iova + @npages pages) against the pages that
 * must be dirty (@want, page indexes): each of them is set, and any other
 * set page shares a granule (@gran bytes) with one of them. Returns the
 * number of set pages, or -1 (with a log) on a mismatch.
 */
static int check_report(struct __test_metadata *_metadata, const uint64_t *bm, uint64_t iova,
			uint32_t npages, const uint32_t *want, uint32_t nwant, uint64_t gran)
{
	uint32_t i, j, set = 0;
	int bad = 0;

	for (j = 0; j < nwant; j++) {
		if (!bit(bm, want[j])) {
			TH_LOG("page %#llx was written by the device but is not reported",
			       (unsigned long long)(iova + want[j] * PG));
			bad = 1;
		}
	}
	for (i = 0; i < npages; i++) {
		uint64_t a = iova + i * PG;
		bool near = false;

		if (!bit(bm, i))
			continue;
		set++;
		for (j = 0; j < nwant; j++)
			if ((a & ~(gran - 1)) == ((iova + want[j] * PG) & ~(gran - 1)))
				near = true;
		if (!near) {
			TH_LOG("page %#llx is reported dirty but was not written",
			       (unsigned long long)a);
			bad = 1;
		}
	}
	return bad ? -1 : (int)set;
}

TEST_F_TIMEOUT(dirty, probe_all_three, 60)
{
	EXPECT_EQ(0, feature(&self->v, VFIO_DEVICE_FEATURE_PROBE | VFIO_DEVICE_FEATURE_SET |
			     VFIO_DEVICE_FEATURE_DMA_LOGGING_STOP, NULL, 0));
	EXPECT_EQ(0, feature(&self->v, VFIO_DEVICE_FEATURE_PROBE | VFIO_DEVICE_FEATURE_GET |
			     VFIO_DEVICE_FEATURE_DMA_LOGGING_REPORT, NULL, 0));
	/* Stopping when not logging succeeds. */
	EXPECT_EQ(0, log_stop(&self->v));
}

TEST_F_TIMEOUT(dirty, reads_reported_exactly_then_cleared, 300)
{
	static const uint32_t pages[] = { 0, 5, 6, 33, 95 };
	const uint32_t cq_pg = 3;	/* I/O CQ 1 at +0x3000 of the queue span */
	struct vfio_device_feature_dma_logging_range r[2];
	uint64_t ps = PG;
	uint32_t i, qpages;
	int ret;

	two_ranges(r);
	qpages = r[0].length / PG;
	ASSERT_EQ(0, log_start(&self->v, r, 2, &ps)) TH_LOG("DMA_LOGGING_START: %s", strerror(errno));
	ASSERT_GE(ps, PG);
	ASSERT_EQ(0ull, ps & (ps - 1)) TH_LOG("granularity %llu not a power of two",
					   (unsigned long long)ps);
	TH_LOG("granularity %llu bytes", (unsigned long long)ps);
	/* A second start without a stop is refused. */
	EXPECT_NE(0, log_start(&self->v, r, 2, &(uint64_t){ PG }));

	/* Nothing was written yet. */
	ASSERT_EQ(0, log_report(&self->v, DATA_IOVA, DATA_PAGES * PG, self->bm));
	EXPECT_EQ(0, check_report(_metadata, self->bm, DATA_IOVA, DATA_PAGES, NULL, 0, ps));

	for (i = 0; i < sizeof(pages) / sizeof(pages[0]); i++)
		ASSERT_EQ(0, read_into(self, pages[i])) TH_LOG("%s", nvp_lasterr());

	ASSERT_EQ(0, log_report(&self->v, DATA_IOVA, DATA_PAGES * PG, self->bm));
	ret = check_report(_metadata, self->bm, DATA_IOVA, DATA_PAGES, pages,
			   sizeof(pages) / sizeof(pages[0]), ps);
	ASSERT_LE(0, ret);
	if (ps == PG)
		EXPECT_EQ((int)(sizeof(pages) / sizeof(pages[0])), ret);
	/* The completions went to the I/O CQ's page: reported in the queue range. */
	ASSERT_EQ(0, log_report(&self->v, NVP_IOVA_BASE_DEFAULT, qpages * PG, self->bm));
	ASSERT_LE(0, check_report(_metadata, self->bm, NVP_IOVA_BASE_DEFAULT, qpages, &cq_pg, 1,
				  ps));

	/* Report and clear: the second report of both ranges is empty. */
	ASSERT_EQ(0, log_report(&self->v, DATA_IOVA, DATA_PAGES * PG, self->bm));
	EXPECT_EQ(0, check_report(_metadata, self->bm, DATA_IOVA, DATA_PAGES, NULL, 0, ps));
	ASSERT_EQ(0, log_report(&self->v, NVP_IOVA_BASE_DEFAULT, qpages * PG, self->bm));
	EXPECT_EQ(0, check_report(_metadata, self->bm, NVP_IOVA_BASE_DEFAULT, qpages, NULL, 0, ps));

	/* A report that straddles a range end and a gap works. */
	ASSERT_EQ(0, read_into(self, 95));
	ASSERT_EQ(0, log_report(&self->v, DATA_IOVA + 64 * PG, 64 * PG, self->bm));
	EXPECT_LE(0, check_report(_metadata, self->bm, DATA_IOVA + 64 * PG, 64,
				  &(uint32_t){ 31 }, 1, ps));
	EXPECT_EQ(0, log_stop(&self->v));
}

TEST_F_TIMEOUT(dirty, report_in_stop_state, 300)
{
	static const uint32_t pages[] = { 7, 8, 60 };
	struct vfio_device_feature_dma_logging_range r[2];
	uint64_t ps = PG;
	uint32_t i, st = ~0u;

	two_ranges(r);
	ASSERT_EQ(0, log_start(&self->v, r, 2, &ps));
	for (i = 0; i < sizeof(pages) / sizeof(pages[0]); i++)
		ASSERT_EQ(0, read_into(self, pages[i])) TH_LOG("%s", nvp_lasterr());
	/* The last report of a migration is read with the device stopped. */
	ASSERT_EQ(0, nvp_mig_set(&self->v, VFIO_DEVICE_STATE_STOP, NULL));
	ASSERT_EQ(0, nvp_mig_get(&self->v, &st));
	ASSERT_EQ((uint32_t)VFIO_DEVICE_STATE_STOP, st);
	ASSERT_EQ(0, log_report(&self->v, DATA_IOVA, DATA_PAGES * PG, self->bm))
		TH_LOG("REPORT in STOP: %s", strerror(errno));
	ASSERT_LE(0, check_report(_metadata, self->bm, DATA_IOVA, DATA_PAGES, pages,
				  sizeof(pages) / sizeof(pages[0]), ps));
	ASSERT_EQ(0, log_report(&self->v, DATA_IOVA, DATA_PAGES * PG, self->bm));
	EXPECT_EQ(0, check_report(_metadata, self->bm, DATA_IOVA, DATA_PAGES, NULL, 0, ps));
	/* Back to RUNNING: tracking carries on. */
	ASSERT_EQ(0, nvp_mig_set(&self->v, VFIO_DEVICE_STATE_RUNNING, NULL));
	ASSERT_EQ(0, read_into(self, 50)) TH_LOG("%s", nvp_lasterr());
	ASSERT_EQ(0, log_report(&self->v, DATA_IOVA, DATA_PAGES * PG, self->bm));
	EXPECT_LE(0, check_report(_metadata, self->bm, DATA_IOVA, DATA_PAGES, &(uint32_t){ 50 },
				  1, ps));
	EXPECT_EQ(0, log_stop(&self->v));
}

TEST_F_TIMEOUT(dirty, many_ranges_merged, 300)
{
	struct vfio_device_feature_dma_logging_range r[MANY_RANGES + 1];
	/* Pages 2 * i are tracked ranges; 10 is in one, 11 is in a gap. */
	static const uint32_t want[] = { 10, 70 };
	uint64_t ps = PG;
	uint32_t i;

	r[0].iova = NVP_IOVA_BASE_DEFAULT;
	r[0].length = (NVP_IOVA_SPAN + PG - 1) & ~(PG - 1);
	for (i = 0; i < MANY_RANGES; i++) {
		r[i + 1].iova = DATA_IOVA + 2 * i * PG;
		r[i + 1].length = PG;
	}
	ASSERT_EQ(0, log_start(&self->v, r, MANY_RANGES + 1, &ps))
		TH_LOG("DMA_LOGGING_START with %u ranges: %s", MANY_RANGES + 1, strerror(errno));
	ASSERT_EQ(0, read_into(self, 10)) TH_LOG("%s", nvp_lasterr());
	ASSERT_EQ(0, read_into(self, 70)) TH_LOG("%s", nvp_lasterr());
	/* 11 lies in a gap VFIO never asked for; the merge may track it, never miss 10. */
	ASSERT_EQ(0, read_into(self, 11)) TH_LOG("%s", nvp_lasterr());
	ASSERT_EQ(0, log_report(&self->v, DATA_IOVA, DATA_PAGES * PG, self->bm));
	for (i = 0; i < sizeof(want) / sizeof(want[0]); i++)
		EXPECT_TRUE(bit(self->bm, want[i])) TH_LOG("page %u not reported", want[i]);
	/* Nothing beyond the pages written (and their granules). */
	for (i = 0; i < DATA_PAGES; i++) {
		uint64_t g = (DATA_IOVA + i * PG) & ~(ps - 1);
		bool near = false;
		uint32_t j;

		if (!bit(self->bm, i))
			continue;
		for (j = 0; j < 3; j++)
			if (g == ((DATA_IOVA + (uint64_t)(j == 2 ? 11 : want[j]) * PG) & ~(ps - 1)))
				near = true;
		EXPECT_TRUE(near) TH_LOG("page %u reported dirty but not written", i);
	}
	EXPECT_EQ(0, log_stop(&self->v));
}

TEST_F_TIMEOUT(dirty, stop_then_report_fails, 120)
{
	struct vfio_device_feature_dma_logging_range r[2];
	uint64_t ps = PG;
	int ret;

	two_ranges(r);
	/* Report before any start fails too. */
	EXPECT_NE(0, log_report(&self->v, DATA_IOVA, DATA_PAGES * PG, self->bm));
	ASSERT_EQ(0, log_start(&self->v, r, 2, &ps));
	ASSERT_EQ(0, log_report(&self->v, DATA_IOVA, DATA_PAGES * PG, self->bm));
	ASSERT_EQ(0, log_stop(&self->v));
	ret = log_report(&self->v, DATA_IOVA, DATA_PAGES * PG, self->bm);
	EXPECT_EQ(-EINVAL, ret) TH_LOG("REPORT after STOP: %s", strerror(-ret));
	/* A new session starts again after the stop. */
	ps = PG;
	ASSERT_EQ(0, log_start(&self->v, r, 2, &ps));
	ASSERT_EQ(0, log_stop(&self->v));
}

TEST_HARNESS_MAIN
