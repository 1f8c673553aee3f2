// SPDX-License-Identifier: GPL-2.0
/*
 * Live migration through the VFIO migration uAPI v2 only: a userspace NVMe
 * driver runs on VF1 (NVP_VF), VF1's controller is suspended and saved
 * (STOP_COPY), the stream is loaded into VF2 (NVP_VF2, RESUMING), and the
 * same driver state carries on on VF2: its admin and I/O queues, their
 * pointers and phases, and the data. Also: a cancelled migration leaves the
 * source running; malformed and truncated streams are refused and the
 * destination stays usable after a reset.
 *
 * Both VFs get the same queue and data memory at the same IOVAs (each in its
 * own IOAS), as a VMM would give the destination the guest's memory.
 *
 * Needs a PF with TP4159 (the project's QEMU device model, hmlms=on); on a
 * PF without it the driver offers no migration and the tests SKIP, unless
 * NVP_EXPECT_MIGRATION=1, when they fail.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

#include "kselftest_harness.h"
#include "nvp_common.h"
#include "lib/vfio_mig.h"

#define NSID 1
#define NBLK 4

static void stamp(uint8_t *buf, uint32_t len, uint64_t lba, uint32_t gen)
{
	uint64_t x = (lba + 1) * 0x9e3779b97f4a7c15ull ^ gen;
	uint32_t i;

	snprintf((char *)buf, len, "NVPMIG lba=%llu gen=%u;", (unsigned long long)lba, gen);
	for (i = 32; i < len; i++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		buf[i] = (uint8_t)x;
	}
}

FIXTURE(mig) {
	struct nvp_vfio v1, v2;
	struct nvp_nvme n;
	bool have_v2;
	uint64_t lba0;
	uint32_t gen;
};

FIXTURE_SETUP(mig)
{
	const char *vf1 = nvp_env("NVP_VF"), *vf2 = nvp_env("NVP_VF2");
	const char *expect = getenv("NVP_EXPECT_MIGRATION");
	uint64_t flags = 0;
	int ret;

	self->v1.devfd = self->v1.iommufd = -1;
	self->v2.devfd = self->v2.iommufd = -1;
	if (!vf1 || !vf2)
		SKIP(return, "NVP_VF and NVP_VF2 are needed");
	NVP_ASSERT_BOUND_TO_DRIVER(vf1);
	NVP_ASSERT_BOUND_TO_DRIVER(vf2);
	ASSERT_EQ(0, nvp_vfio_open(&self->v1, vf1)) TH_LOG("%s", nvp_lasterr());
	ret = nvp_mig_flags(&self->v1, &flags);
	if (ret && !(expect && !strcmp(expect, "1")))
		SKIP(return, "%s offers no migration (%s): PF without TP4159", vf1, strerror(-ret));
	ASSERT_EQ(0, ret) TH_LOG("VFIO_DEVICE_FEATURE_MIGRATION: %s", strerror(-ret));
	ASSERT_TRUE((flags & VFIO_MIGRATION_STOP_COPY) != 0);
	ASSERT_TRUE((flags & VFIO_MIGRATION_P2P) != 0);
	ASSERT_EQ(0, nvp_vfio_open(&self->v2, vf2)) TH_LOG("%s", nvp_lasterr());
	ASSERT_EQ(0, nvp_vfio_map_bar0(&self->v2)) TH_LOG("%s", nvp_lasterr());
	self->have_v2 = true;

	/* The guest: a controller with an admin and an I/O queue on VF1. */
	ASSERT_EQ(0, nvp_nvme_init(&self->n, &self->v1, NVP_IOVA_BASE_DEFAULT))
		TH_LOG("%s", nvp_lasterr());
	ASSERT_EQ(0, nvp_nvme_enable(&self->n)) TH_LOG("%s", nvp_lasterr());
	ASSERT_EQ(0, nvp_nvme_identify_ctrl(&self->n)) TH_LOG("%s", nvp_lasterr());
	ASSERT_EQ(0, nvp_nvme_identify_ns(&self->n, NSID)) TH_LOG("%s", nvp_lasterr());
	ASSERT_EQ(0, nvp_nvme_create_ioq(&self->n)) TH_LOG("%s", nvp_lasterr());
	ASSERT_GT(self->n.nsze, (uint64_t)1024);
	self->lba0 = self->n.nsze / 2;
	self->gen = (uint32_t)time(NULL);
}

FIXTURE_TEARDOWN(mig)
{
	/* Back to RUNNING; a failed test may have left a device anywhere. */
	if (self->v1.devfd >= 0 && nvp_mig_set(&self->v1, VFIO_DEVICE_STATE_RUNNING, NULL))
		nvp_vfio_reset(&self->v1);
	if (self->v2.devfd >= 0 && nvp_mig_set(&self->v2, VFIO_DEVICE_STATE_RUNNING, NULL))
		nvp_vfio_reset(&self->v2);
	if (self->n.v && self->n.v->bar0)
		nvp_nvme_disable(&self->n);
	self->n.v = &self->v1;
	nvp_nvme_fini(&self->n);
	nvp_vfio_close(&self->v2);
	nvp_vfio_close(&self->v1);
}

/*
 * Give VF2 the guest's memory at the same IOVAs, and the PCI command
 * register the guest set (a VMM restores config space itself: it is not
 * part of the device's migration data).
 */
static int map_guest_into(struct nvp_nvme *n, struct nvp_vfio *dst)
{
	struct { void *va; uint64_t iova; } pages[] = {
		{ n->aq.sq, n->aq.sq_iova }, { (void *)n->aq.cq, n->aq.cq_iova },
		{ n->ioq.sq, n->ioq.sq_iova }, { (void *)n->ioq.cq, n->ioq.cq_iova },
		{ n->buf, n->buf_iova }, { n->wbuf, n->wbuf_iova }, { n->rbuf, n->rbuf_iova },
	};
	unsigned int i;
	int ret;

	for (i = 0; i < sizeof(pages) / sizeof(pages[0]); i++) {
		ret = nvp_dma_map(dst, pages[i].va, pages[i].iova, NVP_PAGE_SIZE);
		if (ret && ret != -EEXIST)
			return ret;
	}
	return nvp_bus_master(dst, true);
}

static int write_blocks(struct nvp_nvme *n, uint64_t lba0, uint32_t gen)
{
	int i, ret;

	for (i = 0; i < NBLK; i++) {
		stamp(n->wbuf, n->lba_size, lba0 + i, gen);
		ret = nvp_nvme_rw(n, true, NSID, lba0 + i);
		if (ret)
			return ret;
	}
	return 0;
}

/* 0 if every block reads back as stamped, else the first bad block + 1. */
static int verify_blocks(struct nvp_nvme *n, uint64_t lba0, uint32_t gen)
{
	uint8_t want[NVP_PAGE_SIZE];
	int i;

	for (i = 0; i < NBLK; i++) {
		memset(n->rbuf, 0x5a, NVP_PAGE_SIZE);
		if (nvp_nvme_rw(n, false, NSID, lba0 + i))
			return i + 1;
		stamp(want, n->lba_size, lba0 + i, gen);
		if (memcmp(want, n->rbuf, n->lba_size))
			return i + 1;
	}
	return 0;
}

/* VF1: RUNNING -> STOP_COPY, return the stream. */
static ssize_t save(struct __test_metadata *_metadata, struct nvp_vfio *v, uint8_t **buf)
{
	uint32_t st = ~0u;
	ssize_t len;
	int fd;

	EXPECT_EQ(0, nvp_mig_set(v, VFIO_DEVICE_STATE_STOP, NULL));
	EXPECT_EQ(0, nvp_mig_get(v, &st));
	EXPECT_EQ((uint32_t)VFIO_DEVICE_STATE_STOP, st);
	if (nvp_mig_set(v, VFIO_DEVICE_STATE_STOP_COPY, &fd))
		return -EIO;
	if (fd < 0)
		return -EBADF;
	len = nvp_mig_read_all(fd, buf);
	close(fd);
	return len;
}

/* VF2: RUNNING -> RESUMING, write @len bytes, -> STOP. Returns the STOP result. */
static int load(struct nvp_vfio *v, const uint8_t *buf, size_t len)
{
	int fd, ret;

	ret = nvp_mig_set(v, VFIO_DEVICE_STATE_RESUMING, &fd);
	if (ret)
		return ret;
	if (fd < 0)
		return -EBADF;
	ret = nvp_mig_write_all(fd, buf, len, 1);
	close(fd);
	if (ret)
		return ret;
	return nvp_mig_set(v, VFIO_DEVICE_STATE_STOP, NULL);
}

TEST_F_TIMEOUT(mig, states_and_features, 120)
{
	uint32_t st = ~0u;

	ASSERT_EQ(0, nvp_mig_get(&self->v1, &st));
	ASSERT_EQ((uint32_t)VFIO_DEVICE_STATE_RUNNING, st);
	/* RUNNING_P2P suspends: I/O still works after RUNNING again. */
	ASSERT_EQ(0, nvp_mig_set(&self->v1, VFIO_DEVICE_STATE_RUNNING_P2P, NULL));
	ASSERT_EQ(0, nvp_mig_get(&self->v1, &st));
	ASSERT_EQ((uint32_t)VFIO_DEVICE_STATE_RUNNING_P2P, st);
	ASSERT_EQ(0, nvp_mig_set(&self->v1, VFIO_DEVICE_STATE_RUNNING, NULL));
	ASSERT_EQ(0, write_blocks(&self->n, self->lba0, self->gen)) TH_LOG("%s", nvp_lasterr());
	ASSERT_EQ(0, verify_blocks(&self->n, self->lba0, self->gen));
	/* An invalid state is refused and the device stays where it was. */
	EXPECT_NE(0, nvp_mig_set(&self->v1, 42, NULL));
	ASSERT_EQ(0, nvp_mig_get(&self->v1, &st));
	EXPECT_EQ((uint32_t)VFIO_DEVICE_STATE_RUNNING, st);
}

TEST_F_TIMEOUT(mig, vf1_to_vf2_data_verified, 300)
{
	uint8_t *stream = NULL;
	ssize_t len;
	uint32_t st = ~0u;

	ASSERT_EQ(0, write_blocks(&self->n, self->lba0, self->gen)) TH_LOG("%s", nvp_lasterr());
	ASSERT_EQ(0, map_guest_into(&self->n, &self->v2)) TH_LOG("%s", nvp_lasterr());

	len = save(_metadata, &self->v1, &stream);
	ASSERT_GT(len, (ssize_t)0) TH_LOG("save: %s", strerror((int)-len));
	TH_LOG("stream: %zd bytes", len);
	ASSERT_EQ(0, load(&self->v2, stream, len)) TH_LOG("load: %s", strerror(errno));
	free(stream);
	ASSERT_EQ(0, nvp_mig_set(&self->v2, VFIO_DEVICE_STATE_RUNNING, NULL));
	ASSERT_EQ(0, nvp_mig_get(&self->v2, &st));
	ASSERT_EQ((uint32_t)VFIO_DEVICE_STATE_RUNNING, st);

	/* The same driver state, now on VF2: old data, and new I/O. */
	self->n.v = &self->v2;
	ASSERT_EQ(0, verify_blocks(&self->n, self->lba0, self->gen))
		TH_LOG("data differs on the destination: %s", nvp_lasterr());
	ASSERT_EQ(0, nvp_nvme_identify_ctrl(&self->n)) TH_LOG("admin queue on VF2: %s", nvp_lasterr());
	ASSERT_EQ(0, write_blocks(&self->n, self->lba0, self->gen + 1)) TH_LOG("%s", nvp_lasterr());
	ASSERT_EQ(0, verify_blocks(&self->n, self->lba0, self->gen + 1));
	TH_LOG("VF2 carries on: CNTLID %u answers on the migrated admin queue", self->n.cntlid);
}

TEST_F_TIMEOUT(mig, in_flight_command_completes_on_destination, 300)
{
	struct nvp_queue *q = &self->n.ioq;
	struct nvme_sqe sqe = { .opc = 0x02, .nsid = NSID };
	uint8_t *stream = NULL;
	volatile struct nvme_cqe *cqe;
	uint8_t want[NVP_PAGE_SIZE];
	struct timespec t0, t;
	ssize_t len;

	ASSERT_EQ(0, write_blocks(&self->n, self->lba0, self->gen)) TH_LOG("%s", nvp_lasterr());
	ASSERT_EQ(0, map_guest_into(&self->n, &self->v2));
	/* Suspend first, then ring a read: the SQE is latched, not fetched. */
	ASSERT_EQ(0, nvp_mig_set(&self->v1, VFIO_DEVICE_STATE_RUNNING_P2P, NULL));
	memset(self->n.rbuf, 0x5a, NVP_PAGE_SIZE);
	sqe.cid = 0x7777;
	sqe.prp1 = self->n.rbuf_iova;
	sqe.cdw10 = (uint32_t)self->lba0;
	sqe.cdw11 = (uint32_t)(self->lba0 >> 32);
	q->sq[q->sq_tail] = sqe;
	q->sq_tail = (q->sq_tail + 1) % q->depth;
	__sync_synchronize();
	*(volatile uint32_t *)(self->v1.bar0 + NVME_REG_DBS + 2 * q->qid * self->n.dstrd) =
		q->sq_tail;
	usleep(200 * 1000);
	cqe = &q->cq[q->cq_head];
	ASSERT_NE((int)q->phase, (int)(cqe->status & 1)) TH_LOG("a suspended controller completed a command");

	len = save(_metadata, &self->v1, &stream);
	ASSERT_GT(len, (ssize_t)0);
	ASSERT_EQ(0, load(&self->v2, stream, len));
	free(stream);
	ASSERT_EQ(0, nvp_mig_set(&self->v2, VFIO_DEVICE_STATE_RUNNING, NULL));

	/* Resumed on VF2, the latched SQE is fetched and completes there. */
	clock_gettime(CLOCK_MONOTONIC, &t0);
	while ((cqe->status & 1) != q->phase) {
		clock_gettime(CLOCK_MONOTONIC, &t);
		ASSERT_LT(t.tv_sec - t0.tv_sec, 10) TH_LOG("the in-flight read never completed");
		usleep(1000);
	}
	EXPECT_EQ(0x7777, (int)cqe->cid);
	EXPECT_EQ(0, (int)(cqe->status >> 1));
	q->cq_head = (q->cq_head + 1) % q->depth;
	if (!q->cq_head)
		q->phase ^= 1;
	*(volatile uint32_t *)(self->v2.bar0 + NVME_REG_DBS + (2 * q->qid + 1) * self->n.dstrd) =
		q->cq_head;
	stamp(want, self->n.lba_size, self->lba0, self->gen);
	EXPECT_EQ(0, memcmp(want, self->n.rbuf, self->n.lba_size));
	self->n.v = &self->v2;
	EXPECT_EQ(0, verify_blocks(&self->n, self->lba0, self->gen));
}

TEST_F_TIMEOUT(mig, cancel_leaves_source_running, 300)
{
	uint8_t *stream = NULL;
	ssize_t len;

	ASSERT_EQ(0, write_blocks(&self->n, self->lba0, self->gen));
	len = save(_metadata, &self->v1, &stream);
	ASSERT_GT(len, (ssize_t)0);
	free(stream);
	/* STOP_COPY -> RUNNING (through STOP, RUNNING_P2P): resumed. */
	ASSERT_EQ(0, nvp_mig_set(&self->v1, VFIO_DEVICE_STATE_RUNNING, NULL));
	ASSERT_EQ(0, verify_blocks(&self->n, self->lba0, self->gen));
	ASSERT_EQ(0, write_blocks(&self->n, self->lba0, self->gen + 7));
	ASSERT_EQ(0, verify_blocks(&self->n, self->lba0, self->gen + 7));
}

TEST_F_TIMEOUT(mig, bad_streams_refused_destination_usable, 300)
{
	uint8_t *stream = NULL, *bad;
	struct nvp_nvme n2 = { 0 };
	ssize_t len;
	int i;

	ASSERT_EQ(0, write_blocks(&self->n, self->lba0, self->gen));
	len = save(_metadata, &self->v1, &stream);
	ASSERT_GT(len, (ssize_t)0);
	bad = malloc(len);
	ASSERT_NE(NULL, bad);
	for (i = 0; i < 6; i++) {
		size_t blen = len;

		memcpy(bad, stream, len);
		switch (i) {
		case 0: blen = len / 2; break;			/* truncated */
		case 1: bad[0] ^= 0xff; break;			/* magic */
		case 2: bad[len / 2] ^= 0x10; break;		/* payload bit flip */
		case 3: bad[16] ^= 0x40; break;			/* total length */
		case 4: bad[36] ^= 0x08; break;			/* section length */
		case 5: blen = 0; break;			/* nothing at all */
		}
		EXPECT_NE(0, load(&self->v2, bad, blen)) TH_LOG("damaged stream %d accepted", i);
		/* Aborting RESUMING takes a reset; then the VF is RUNNING and usable. */
		ASSERT_EQ(0, nvp_vfio_reset(&self->v2));
		ASSERT_EQ(0, nvp_mig_set(&self->v2, VFIO_DEVICE_STATE_RUNNING, NULL));
	}
	free(bad);
	free(stream);
	ASSERT_EQ(0, nvp_nvme_init(&n2, &self->v2, NVP_IOVA_BASE_DEFAULT + 0x100000))
		TH_LOG("%s", nvp_lasterr());
	EXPECT_EQ(0, nvp_nvme_enable(&n2)) TH_LOG("%s", nvp_lasterr());
	EXPECT_EQ(0, nvp_nvme_identify_ctrl(&n2)) TH_LOG("%s", nvp_lasterr());
	nvp_nvme_disable(&n2);
	nvp_nvme_fini(&n2);
	/* And the source, cancelled, runs on. */
	ASSERT_EQ(0, nvp_mig_set(&self->v1, VFIO_DEVICE_STATE_RUNNING, NULL));
	EXPECT_EQ(0, verify_blocks(&self->n, self->lba0, self->gen));
}

/*
 * A VF whose guest never enabled its controller (no queues, zero
 * addresses) migrates too, and the destination's guest can then enable it.
 */
TEST_F_TIMEOUT(mig, never_enabled_vf_migrates, 300)
{
	struct nvp_nvme n2 = { 0 };
	uint8_t *stream = NULL;
	ssize_t len;

	/* FLR: VF1's controller is disabled, its admin queue gone. */
	ASSERT_EQ(0, nvp_vfio_reset(&self->v1));
	ASSERT_EQ(0u, nvp_reg32(&self->n, NVME_REG_CSTS) & NVME_CSTS_RDY);
	len = save(_metadata, &self->v1, &stream);
	ASSERT_GT(len, (ssize_t)0) TH_LOG("save of a never-enabled VF: %s", strerror((int)-len));
	ASSERT_EQ(0, load(&self->v2, stream, len)) TH_LOG("load: %s", strerror(errno));
	free(stream);
	ASSERT_EQ(0, nvp_mig_set(&self->v2, VFIO_DEVICE_STATE_RUNNING, NULL));
	/* Still disabled on VF2, and a guest can bring it up from scratch. */
	ASSERT_EQ(0, nvp_nvme_init(&n2, &self->v2, NVP_IOVA_BASE_DEFAULT + 0x200000))
		TH_LOG("%s", nvp_lasterr());
	EXPECT_EQ(0u, nvp_reg32(&n2, NVME_REG_CSTS) & NVME_CSTS_RDY);
	ASSERT_EQ(0, nvp_nvme_enable(&n2)) TH_LOG("%s", nvp_lasterr());
	ASSERT_EQ(0, nvp_nvme_identify_ctrl(&n2)) TH_LOG("%s", nvp_lasterr());
	ASSERT_EQ(0, nvp_nvme_identify_ns(&n2, NSID)) TH_LOG("%s", nvp_lasterr());
	ASSERT_EQ(0, nvp_nvme_create_ioq(&n2)) TH_LOG("%s", nvp_lasterr());
	ASSERT_EQ(0, write_blocks(&n2, self->lba0, self->gen)) TH_LOG("%s", nvp_lasterr());
	EXPECT_EQ(0, verify_blocks(&n2, self->lba0, self->gen));
	nvp_nvme_disable(&n2);
	nvp_nvme_fini(&n2);
}

/* VF1 -> VF2 -> VF1 -> VF2: the same queues and data each time. */
TEST_F_TIMEOUT(mig, ping_pong, 600)
{
	struct nvp_vfio *from = &self->v1, *to = &self->v2, *t;
	uint8_t *stream = NULL;
	ssize_t len;
	int round;

	ASSERT_EQ(0, map_guest_into(&self->n, &self->v2));
	ASSERT_EQ(0, write_blocks(&self->n, self->lba0, self->gen));
	for (round = 0; round < 3; round++) {
		/* The destination starts clean: reset, RUNNING, no queues. */
		ASSERT_EQ(0, nvp_vfio_reset(to));
		ASSERT_EQ(0, nvp_mig_set(to, VFIO_DEVICE_STATE_RUNNING, NULL));
		len = save(_metadata, from, &stream);
		ASSERT_GT(len, (ssize_t)0) TH_LOG("round %d save", round);
		ASSERT_EQ(0, load(to, stream, len)) TH_LOG("round %d load: %s", round, strerror(errno));
		free(stream);
		stream = NULL;
		ASSERT_EQ(0, nvp_mig_set(to, VFIO_DEVICE_STATE_RUNNING, NULL));
		self->n.v = to;
		ASSERT_EQ(0, verify_blocks(&self->n, self->lba0, self->gen + round))
			TH_LOG("round %d: data differs after migration", round);
		ASSERT_EQ(0, write_blocks(&self->n, self->lba0, self->gen + round + 1));
		/* The old source goes back to RUNNING (it is reset next round). */
		ASSERT_EQ(0, nvp_mig_set(from, VFIO_DEVICE_STATE_RUNNING, NULL));
		t = from;
		from = to;
		to = t;
	}
	EXPECT_EQ(0, verify_blocks(&self->n, self->lba0, self->gen + 3));
	ASSERT_EQ(0, nvp_nvme_identify_ctrl(&self->n));
}

/* VFIO_DEVICE_RESET in the middle of a migration: back to RUNNING, file dead. */
TEST_F_TIMEOUT(mig, reset_during_stop_copy, 300)
{
	uint8_t buf[64];
	uint32_t st = ~0u;
	int fd;

	ASSERT_EQ(0, write_blocks(&self->n, self->lba0, self->gen));
	ASSERT_EQ(0, nvp_mig_set(&self->v1, VFIO_DEVICE_STATE_STOP_COPY, &fd));
	ASSERT_GE(fd, 0);
	ASSERT_EQ(0, nvp_vfio_reset(&self->v1));
	ASSERT_EQ(0, nvp_mig_get(&self->v1, &st));
	EXPECT_EQ((uint32_t)VFIO_DEVICE_STATE_RUNNING, st);
	EXPECT_GT(0, read(fd, buf, sizeof(buf))) TH_LOG("the save file still serves data after a reset");
	close(fd);
	/* The reset disabled the controller: a guest enables it again. */
	ASSERT_EQ(0, nvp_nvme_enable(&self->n)) TH_LOG("%s", nvp_lasterr());
	ASSERT_EQ(0, nvp_nvme_create_ioq(&self->n)) TH_LOG("%s", nvp_lasterr());
	EXPECT_EQ(0, verify_blocks(&self->n, self->lba0, self->gen));
}

TEST_HARNESS_MAIN
