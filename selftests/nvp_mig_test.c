// SPDX-License-Identifier: GPL-2.0
/*
 * Live migration through the VFIO migration uAPI v2 only: a userspace NVMe
 * driver runs on VF1 (NVP_VF), VF1's controller is suspended and saved
 * (STOP_COPY), the stream is loaded into VF2 (NVP_VF2, RESUMING), and the
 * same driver state carries on on VF2: its admin and I/O queues, their
 * pointers and phases, and the data. Also: a cancelled migration leaves the
 * source running; malformed and truncated streams are refused and the
 * destination stays usable after a reset; a reset in STOP_COPY or RESUMING
 * kills the data file; a VF using every I/O queue its VQ resources allow,
 * with shared MSI-X vectors, carries on queue by queue (vectors included).
 *
 * The pf_loss test unbinds the PF's nvme driver (NVP_PF) in the middle of a
 * migration, then binds it again, re-provisions the VFs' secondary
 * controllers through the PF (nvme admin passthrough) and rebinds the VFs;
 * its teardown does the same in the parent process if the test died, so
 * the tests after it find the bed as it was.
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
#include "lib/mig_guest.h"
#include "lib/nvme_pf.h"
#include "lib/vfio_mig.h"

#define NSID NVP_NSID
#define NBLK 4

#define stamp nvp_stamp

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
	ASSERT_EQ(0, nvp_nvme_bringup(&self->n, &self->v1, NVP_IOVA_BASE_DEFAULT, NSID))
		TH_LOG("%s", nvp_lasterr());
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
#define map_guest_into nvp_guest_map_into

static int write_blocks(struct nvp_nvme *n, uint64_t lba0, uint32_t gen)
{
	return nvp_blocks_write(n, lba0, NBLK, gen);
}

/* 0 if every block reads back as stamped, else the first bad block + 1. */
static int verify_blocks(struct nvp_nvme *n, uint64_t lba0, uint32_t gen)
{
	return nvp_blocks_verify(n, lba0, NBLK, gen);
}

/* VF1: RUNNING -> STOP_COPY, return the stream. */
static ssize_t save(struct __test_metadata *_metadata, struct nvp_vfio *v, uint8_t **buf)
{
	ssize_t len = nvp_mig_save(v, buf);

	EXPECT_LE(0, len) TH_LOG("%s", nvp_lasterr());
	return len;
}

/* VF2: RUNNING -> RESUMING, write @len bytes, -> STOP. Returns the STOP result. */
static int load(struct nvp_vfio *v, const uint8_t *buf, size_t len)
{
	return nvp_mig_load(v, buf, len, 1);
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
	struct nvp_queue *q = &self->n.ioq[0];
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

/* VFIO_DEVICE_RESET while the destination is RESUMING, half a stream in. */
TEST_F_TIMEOUT(mig, reset_during_resuming, 300)
{
	uint8_t *stream = NULL;
	uint32_t st = ~0u;
	ssize_t len;
	int fd, ret;

	ASSERT_EQ(0, write_blocks(&self->n, self->lba0, self->gen));
	ASSERT_EQ(0, map_guest_into(&self->n, &self->v2));
	len = save(_metadata, &self->v1, &stream);
	ASSERT_GT(len, (ssize_t)0);
	ASSERT_EQ(0, nvp_mig_set(&self->v2, VFIO_DEVICE_STATE_RESUMING, &fd));
	ASSERT_GE(fd, 0);
	ASSERT_EQ(0, nvp_mig_write_all(fd, stream, len / 2, 1));
	ASSERT_EQ(0, nvp_vfio_reset(&self->v2));
	ASSERT_EQ(0, nvp_mig_get(&self->v2, &st));
	EXPECT_EQ((uint32_t)VFIO_DEVICE_STATE_RUNNING, st);
	/* The reset killed the resume file: it takes no more data. */
	EXPECT_GT(0, write(fd, stream + len / 2, len - len / 2))
		TH_LOG("the resume file still takes data after a reset");
	close(fd);
	/* RESUMING again starts from nothing: the whole stream loads. */
	ret = load(&self->v2, stream, len);
	ASSERT_EQ(0, ret) TH_LOG("load after the reset: %s", strerror(-ret));
	free(stream);
	ASSERT_EQ(0, nvp_mig_set(&self->v2, VFIO_DEVICE_STATE_RUNNING, NULL));
	self->n.v = &self->v2;
	EXPECT_EQ(0, verify_blocks(&self->n, self->lba0, self->gen)) TH_LOG("%s", nvp_lasterr());
}

/* ---- a VF using many queues ---- */

/* Each I/O queue's own data pages (write, read), outside the driver's span. */
#define QBUF_IOVA	(NVP_IOVA_BASE_DEFAULT + 0x80000)
#define QBUF_LEN	(2 * NVP_MAX_IOQ * NVP_PAGE_SIZE)

static uint8_t *qbuf(uint8_t *mem, unsigned int i, bool write)
{
	return mem + (2 * i + (write ? 0 : 1)) * NVP_PAGE_SIZE;
}

static uint64_t qbuf_iova(unsigned int i, bool write)
{
	return QBUF_IOVA + (2 * i + (write ? 0 : 1)) * NVP_PAGE_SIZE;
}

/* Read @lba on I/O queue @i: 0 if it holds the block stamped @gen. */
static int q_verify(struct nvp_nvme *n, uint8_t *mem, unsigned int i, uint64_t lba, uint32_t gen)
{
	uint8_t want[NVP_PAGE_SIZE];
	int ret;

	memset(qbuf(mem, i, false), 0x5a, NVP_PAGE_SIZE);
	ret = nvp_nvme_rw_q(n, &n->ioq[i], false, NSID, lba, qbuf_iova(i, false));
	if (ret)
		return ret;
	stamp(want, n->lba_size, lba, gen);
	if (memcmp(want, qbuf(mem, i, false), n->lba_size)) {
		nvp_seterr("queue %u: LBA %llu does not hold generation %u", n->ioq[i].qid,
			   (unsigned long long)lba, gen);
		return -EILSEQ;
	}
	return 0;
}

/* Write @lba stamped @gen on I/O queue @i, then read it back there. */
static int q_write_verify(struct nvp_nvme *n, uint8_t *mem, unsigned int i, uint64_t lba,
			  uint32_t gen)
{
	int ret;

	stamp(qbuf(mem, i, true), n->lba_size, lba, gen);
	ret = nvp_nvme_rw_q(n, &n->ioq[i], true, NSID, lba, qbuf_iova(i, true));
	return ret ? ret : q_verify(n, mem, i, lba, gen);
}

/* Forget the interrupts so far (after letting any in flight land). */
static void irqs_drain(struct nvp_vfio *v)
{
	uint32_t i;

	nvp_sleep_us(10 * 1000);
	for (i = 0; i < v->nmsix; i++)
		nvp_vfio_msix_take(v, i);
}

/*
 * Interrupts per vector since the last drain, after waiting (up to 2 s) for
 * every vector in @mask to have fired: a completion's MSI-X message may land
 * after its CQE is visible.
 */
static void irqs_wait(struct nvp_vfio *v, uint32_t mask, uint64_t *cnt)
{
	uint64_t deadline = nvp_now_ms() + 2000;
	uint32_t i, missing;

	memset(cnt, 0, v->nmsix * sizeof(*cnt));
	do {
		missing = 0;
		for (i = 0; i < v->nmsix; i++) {
			cnt[i] += nvp_vfio_msix_take(v, i);
			if ((mask >> i & 1) && !cnt[i])
				missing++;
		}
		if (missing)
			nvp_sleep_us(1000);
	} while (missing && nvp_now_ms() < deadline);
}

/* Only the vectors in @mask fired, each at least once. */
static bool irqs_only(struct nvp_vfio *v, uint32_t mask, char *why, size_t len)
{
	uint64_t cnt[NVP_MAX_VEC];
	uint32_t i;
	bool ok = true;
	int off = 0;

	irqs_wait(v, mask, cnt);
	for (i = 0; i < v->nmsix; i++) {
		if (!!cnt[i] != (mask >> i & 1))
			ok = false;
		off += snprintf(why + off, len - off, " v%u:%llu%s", i, (unsigned long long)cnt[i],
				mask >> i & 1 ? "(want)" : "");
		if (off >= (int)len)
			break;
	}
	return ok;
}

/*
 * VF1 with as many I/O queue pairs as its secondary controller has VQ
 * resources for, their completion queues on MSI-X vectors shared
 * round-robin (QID % vectors); a different number of commands on each
 * queue, so that every queue's pointers and phase differ; a read rung but
 * not fetched on every other queue at suspend. On VF2, the latched reads
 * complete, and every queue carries on (old data, a write and a read) and
 * signals its own vector, and no other.
 */
TEST_F_TIMEOUT(mig, many_queues_every_queue_carries_on, 300)
{
	const char *want_vq = nvp_env("NVP_VF_VQ");
	struct nvp_nvme *n = &self->n;
	uint16_t nvq = 0, nvi = 0, cid[NVP_MAX_IOQ];
	uint32_t nmsix = 0, nvec, mask, gen[NVP_MAX_IOQ];
	bool latched[NVP_MAX_IOQ] = { false };
	uint8_t *mem, *stream = NULL;
	char why[512];
	ssize_t len;
	unsigned int i, k;
	int ret;

	/* What VF1's secondary controller was given: VQ (admin + I/O) and VI. */
	ASSERT_EQ(0, nvp_nvme_identify_res(n, &nvq, &nvi)) TH_LOG("%s", nvp_lasterr());
	ASSERT_EQ(0, nvp_vfio_irq_count(&self->v1, VFIO_PCI_MSIX_IRQ_INDEX, &nmsix))
		TH_LOG("%s", nvp_lasterr());
	TH_LOG("VF1: %u VQ, %u VI, %u MSI-X vectors", nvq, nvi, nmsix);
	if (want_vq) {
		ASSERT_EQ(atoi(want_vq), (int)nvq)
			TH_LOG("the runner gave VF1 %s VQ (NVP_VF_VQ)", want_vq);
	}
	if (nvq < 3)
		SKIP(return, "VF1 has %u VQ: 2 I/O queue pairs (3 VQ) at least are needed", nvq);
	nvec = nvi < nmsix ? nvi : nmsix;
	if (nvec > NVP_MAX_VEC)
		nvec = NVP_MAX_VEC;
	ASSERT_LT(0u, nvec) TH_LOG("VF1 has no interrupt vector");

	/* A fresh controller with every queue it has resources for. */
	ASSERT_EQ(0, nvp_vfio_msix_enable(&self->v1, nvec)) TH_LOG("%s", nvp_lasterr());
	ASSERT_EQ(0, nvp_nvme_enable(n)) TH_LOG("%s", nvp_lasterr());
	ASSERT_EQ(0, nvp_nvme_create_ioqs(n, 0, (uint16_t)nvec)) TH_LOG("%s", nvp_lasterr());
	ASSERT_EQ((nvq - 1u < NVP_MAX_IOQ ? nvq - 1u : NVP_MAX_IOQ), (unsigned int)n->nioq)
		TH_LOG("VQ %u, but the controller allocated %u I/O queue pairs", nvq, n->nioq);
	TH_LOG("%u I/O queue pairs on %u vectors", n->nioq, nvec);
	mem = nvp_dma_alloc(&self->v1, QBUF_IOVA, QBUF_LEN);
	ASSERT_NE(NULL, mem) TH_LOG("%s", nvp_lasterr());

	/* Queue i: 3 + 9i write+read pairs, each signalling the queue's vector only. */
	for (i = 0; i < n->nioq; i++) {
		struct nvp_queue *q = &n->ioq[i];
		uint64_t lba = self->lba0 + 64 + 8 * i;

		for (k = 0; k < 3 + 9 * i; k++) {
			gen[i] = self->gen + 100 * i + k;
			irqs_drain(&self->v1);
			ASSERT_EQ(0, q_write_verify(n, mem, i, lba, gen[i]))
				TH_LOG("VF1 queue %u, command pair %u: %s", q->qid, k,
				       nvp_lasterr());
			ASSERT_TRUE(irqs_only(&self->v1, 1u << q->iv, why, sizeof(why)))
				TH_LOG("VF1 queue %u (vector %u), pair %u: interrupts%s", q->qid,
				       q->iv, k, why);
		}
		TH_LOG("VF1 queue %u: vector %u, SQ tail %u, CQ head %u, phase %u", q->qid, q->iv,
		       q->sq_tail, q->cq_head, q->phase);
	}

	/* VF2 sees the guest's memory, as a VMM's destination would. */
	ASSERT_EQ(0, map_guest_into(n, &self->v2)) TH_LOG("%s", nvp_lasterr());
	ASSERT_EQ(0, nvp_dma_map(&self->v2, mem, QBUF_IOVA, QBUF_LEN)) TH_LOG("%s", nvp_lasterr());

	/* Suspended, then a read rung on every other queue: latched, not fetched. */
	ASSERT_EQ(0, nvp_mig_set(&self->v1, VFIO_DEVICE_STATE_RUNNING_P2P, NULL));
	mask = 0;
	for (i = 0; i < n->nioq; i += 2) {
		struct nvme_sqe sqe;

		memset(qbuf(mem, i, false), 0x5a, NVP_PAGE_SIZE);
		nvp_nvme_rw_sqe(&sqe, false, NSID, self->lba0 + 64 + 8 * i, qbuf_iova(i, false));
		nvp_nvme_post(n, &n->ioq[i], &sqe);
		cid[i] = sqe.cid;
		latched[i] = true;
		mask |= 1u << n->ioq[i].iv;
	}
	usleep(200 * 1000);
	for (i = 0; i < n->nioq; i++) {
		ASSERT_FALSE(nvp_nvme_cq_ready(&n->ioq[i]))
			TH_LOG("queue %u completed a command while suspended", n->ioq[i].qid);
	}

	len = save(_metadata, &self->v1, &stream);
	ASSERT_GT(len, (ssize_t)0) TH_LOG("save: %s", strerror((int)-len));
	ret = load(&self->v2, stream, len);
	ASSERT_EQ(0, ret) TH_LOG("load: %s", strerror(-ret));
	free(stream);
	/* The destination's VMM sets up its interrupts before it runs. */
	ASSERT_EQ(0, nvp_vfio_msix_enable(&self->v2, nvec)) TH_LOG("%s", nvp_lasterr());
	ASSERT_EQ(0, nvp_mig_set(&self->v2, VFIO_DEVICE_STATE_RUNNING, NULL));
	n->v = &self->v2;

	/* The latched reads complete on VF2, with what VF1 wrote, on their vectors. */
	for (i = 0; i < n->nioq; i++) {
		struct nvme_cqe cqe;
		uint8_t want[NVP_PAGE_SIZE];

		if (!latched[i])
			continue;
		ASSERT_EQ(0, nvp_nvme_reap(n, &n->ioq[i], cid[i], &cqe, NVP_CMD_TIMEOUT_MS))
			TH_LOG("latched read on queue %u: %s", n->ioq[i].qid, nvp_lasterr());
		stamp(want, n->lba_size, self->lba0 + 64 + 8 * i, gen[i]);
		EXPECT_EQ(0, memcmp(want, qbuf(mem, i, false), n->lba_size))
			TH_LOG("latched read on queue %u: wrong data", n->ioq[i].qid);
	}
	EXPECT_TRUE(irqs_only(&self->v2, mask, why, sizeof(why)))
		TH_LOG("VF2, latched reads: interrupts%s", why);

	/* Every queue carries on: its data, new I/O, its vector and no other. */
	for (i = 0; i < n->nioq; i++) {
		struct nvp_queue *q = &n->ioq[i];
		uint64_t lba = self->lba0 + 64 + 8 * i;

		irqs_drain(&self->v2);
		ASSERT_EQ(0, q_verify(n, mem, i, lba, gen[i]))
			TH_LOG("VF2 queue %u: %s", q->qid, nvp_lasterr());
		ASSERT_EQ(0, q_write_verify(n, mem, i, lba, gen[i] + 7))
			TH_LOG("VF2 queue %u: %s", q->qid, nvp_lasterr());
		EXPECT_TRUE(irqs_only(&self->v2, 1u << q->iv, why, sizeof(why)))
			TH_LOG("VF2 queue %u (vector %u): interrupts%s", q->qid, q->iv, why);
	}
	ASSERT_EQ(0, nvp_nvme_identify_ctrl(n)) TH_LOG("admin queue on VF2: %s", nvp_lasterr());
	/*
	 * The source is reset, as a VMM does after a migration: resumed as it
	 * is, it would run the reads latched on it into the freed pages.
	 */
	ASSERT_EQ(0, nvp_vfio_reset(&self->v1)) TH_LOG("%s", nvp_lasterr());
	nvp_dma_unmap(&self->v2, QBUF_IOVA, QBUF_LEN, NULL);
	nvp_dma_free(&self->v1, mem, QBUF_IOVA, QBUF_LEN);
}

/* ---- the PF's driver unbinds in the middle of a migration ---- */

FIXTURE(pf_loss) {
	char pf[32], vf[2][32];
	struct nvp_sec_ctrl sc[2];	/* the VFs' secondary controllers as found */
	bool pf_taken;			/* the test unbound the PF ... */
	bool restored;			/* ... and put everything back */
};

FIXTURE_SETUP(pf_loss)
{
	const char *pf = nvp_env("NVP_PF"), *vf1 = nvp_env("NVP_VF"), *vf2 = nvp_env("NVP_VF2");
	const char *expect = getenv("NVP_EXPECT_MIGRATION");
	struct nvp_vfio v;
	uint64_t flags = 0;
	char drv[64];
	unsigned int vfn;
	int fd, i, ret;

	if (!pf || !vf1 || !vf2)
		SKIP(return, "NVP_PF, NVP_VF and NVP_VF2 are needed");
	snprintf(self->pf, sizeof(self->pf), "%s", pf);
	snprintf(self->vf[0], sizeof(self->vf[0]), "%s", vf1);
	snprintf(self->vf[1], sizeof(self->vf[1]), "%s", vf2);
	NVP_ASSERT_BOUND_TO_DRIVER(vf1);
	NVP_ASSERT_BOUND_TO_DRIVER(vf2);
	ASSERT_EQ(0, nvp_pci_driver(pf, drv, sizeof(drv))) TH_LOG("PF %s is not bound", pf);
	ASSERT_STREQ("nvme", drv);
	ASSERT_EQ(0, nvp_vfio_open(&v, vf1)) TH_LOG("%s", nvp_lasterr());
	ret = nvp_mig_flags(&v, &flags);
	nvp_vfio_close(&v);
	if (ret && !(expect && !strcmp(expect, "1")))
		SKIP(return, "%s offers no migration (%s): PF without TP4159", vf1, strerror(-ret));
	ASSERT_EQ(0, ret) TH_LOG("VFIO_DEVICE_FEATURE_MIGRATION: %s", strerror(-ret));

	/* The VFs' resources, to give them back after the PF's controller reset. */
	fd = nvp_pf_open(pf, 5000);
	ASSERT_LE(0, fd) TH_LOG("%s", nvp_lasterr());
	for (i = 0; i < 2; i++) {
		ret = nvp_pci_vf_number(self->vf[i], &vfn);
		if (!ret)
			ret = nvp_pf_sec_ctrl(fd, (uint16_t)vfn, &self->sc[i]);
		if (ret)
			break;
		TH_LOG("%s: VF %u, secondary controller %u, %s, %u VQ, %u VI", self->vf[i], vfn,
		       self->sc[i].scid, self->sc[i].online ? "online" : "offline",
		       self->sc[i].nvq, self->sc[i].nvi);
	}
	close(fd);
	ASSERT_EQ(0, ret) TH_LOG("%s", nvp_lasterr());
	ASSERT_TRUE(self->sc[0].online && self->sc[1].online);
}

/*
 * PF back on nvme; the VFs' secondary controllers online again with the
 * resources they had (the PF's controller reset took both away); the VFs
 * bound to the driver again, because a VF bound across the PF's loss keeps
 * the fenced migration controller. Idempotent.
 */
/*
 * PF bound to nvme again and both secondary controllers provisioned as they
 * were. With @rebind, the VFs are also unbound and bound again; without it
 * they must still be bound to the driver (they stayed bound while the PF
 * was away, and the driver must pick up the PF's new controller by itself).
 */
static int restore_bed(FIXTURE_DATA(pf_loss) *self, bool rebind)
{
	const struct nvp_sec_ctrl *was;
	struct nvp_sec_ctrl now;
	const char *drv_want = nvp_env_driver();
	char drv[64];
	int fd, i, ret = 0;

	if (nvp_pci_driver(self->pf, drv, sizeof(drv)) == -ENOENT) {
		nvp_pci_set_override(self->pf, NULL);
		ret = nvp_pci_bind(self->pf, "nvme");
		if (ret)
			return ret;
	}
	fd = nvp_pf_open(self->pf, 30000);
	if (fd < 0)
		return fd;
	for (i = 0; i < 2 && !ret; i++) {
		was = &self->sc[i];
		ret = nvp_pf_sec_ctrl(fd, was->vfn, &now);
		if (!ret && !(now.online && now.nvq == was->nvq && now.nvi == was->nvi))
			ret = nvp_pf_provision(fd, was->scid, was->nvq, was->nvi);
	}
	close(fd);
	for (i = 0; i < 2 && !ret; i++) {
		if (rebind) {
			nvp_pci_unbind(self->vf[i]);
			nvp_pci_set_override(self->vf[i], drv_want);
			nvp_pci_drivers_probe(self->vf[i]);
		}
		if (nvp_pci_driver(self->vf[i], drv, sizeof(drv)) || strcmp(drv, drv_want)) {
			nvp_seterr("%s did not bind to %s again", self->vf[i], drv_want);
			ret = -ENODEV;
		}
	}
	return ret;
}

/* Runs in the parent, even if the test crashed: leave the bed as it was. */
FIXTURE_TEARDOWN_PARENT(pf_loss)
{
	/* Braces: an assertion's log handler is a loop after the statement. */
	if (self->pf_taken && !self->restored) {
		EXPECT_EQ(0, restore_bed(self, true))
			TH_LOG("restoring the PF and VFs: %s", nvp_lasterr());
	}
}

/*
 * VF1 in STOP_COPY with its save file partly read, VF2 in RESUMING with
 * half a stream written, when the PF's nvme driver unbinds: every step that
 * needs the PF fails with ENODEV, nothing hangs, a reset brings each VF back
 * to RUNNING; after the PF is bound again and the VFs re-provisioned (not
 * rebound: the driver switches to the PF's new controller by itself), VF1
 * runs the same data and migrates to VF2 again.
 */
TEST_F_TIMEOUT(pf_loss, pf_unbind_mid_migration, 300)
{
	struct nvp_vfio v1, v2;
	struct nvp_nvme n;
	uint8_t *stream = NULL, *rest = NULL, head[64];
	uint64_t lba0, sz = 0;
	uint32_t gen = (uint32_t)time(NULL), st = ~0u;
	ssize_t len, r, got;
	int sfd, rfd, ret;

	/* A guest on VF1; VF2 sees its memory. */
	ASSERT_EQ(0, nvp_vfio_open(&v1, self->vf[0])) TH_LOG("%s", nvp_lasterr());
	ASSERT_EQ(0, nvp_vfio_open(&v2, self->vf[1])) TH_LOG("%s", nvp_lasterr());
	ASSERT_EQ(0, nvp_vfio_map_bar0(&v2)) TH_LOG("%s", nvp_lasterr());
	ASSERT_EQ(0, nvp_nvme_bringup(&n, &v1, NVP_IOVA_BASE_DEFAULT, NSID))
		TH_LOG("%s", nvp_lasterr());
	lba0 = n.nsze / 2 + 256;
	ASSERT_EQ(0, write_blocks(&n, lba0, gen)) TH_LOG("%s", nvp_lasterr());
	ASSERT_EQ(0, map_guest_into(&n, &v2)) TH_LOG("%s", nvp_lasterr());

	/* A whole stream of VF1; back to STOP; half of it into VF2 (RESUMING). */
	len = save(_metadata, &v1, &stream);
	ASSERT_GT(len, (ssize_t)sizeof(head));
	ASSERT_EQ(0, nvp_mig_set(&v1, VFIO_DEVICE_STATE_STOP, NULL));
	ASSERT_EQ(0, nvp_mig_set(&v2, VFIO_DEVICE_STATE_RESUMING, &rfd));
	ASSERT_EQ(0, nvp_mig_write_all(rfd, stream, len / 2, 1));
	/* VF1 in STOP_COPY again, a new save file, its first bytes read. */
	ASSERT_EQ(0, nvp_mig_set(&v1, VFIO_DEVICE_STATE_STOP_COPY, &sfd));
	ASSERT_EQ((ssize_t)sizeof(head), read(sfd, head, sizeof(head)));
	EXPECT_EQ(0, memcmp(head, stream, sizeof(head)));

	/* The PF's driver goes away. */
	self->pf_taken = true;
	ASSERT_EQ(0, nvp_pci_unbind(self->pf)) TH_LOG("%s", nvp_lasterr());
	ASSERT_EQ(-ENOENT, nvp_pci_driver(self->pf, NULL, 0));

	/*
	 * VF1's save file was captured before: it serves the rest of that
	 * snapshot, or fails; it ends either way.
	 */
	rest = malloc(len);
	ASSERT_NE(NULL, rest);
	got = 0;
	while ((r = read(sfd, rest + got, len - got)) > 0 && got + r < len)
		got += r;
	if (r > 0)
		got += r;
	TH_LOG("save file after the PF's loss: %zd more bytes, last read %zd (%s)", got, r,
	       r < 0 ? strerror(errno) : "ok");
	if (r >= 0) {
		EXPECT_EQ(len - (ssize_t)sizeof(head), got) TH_LOG("a short snapshot");
	}
	free(rest);
	/* The size estimate needs the PF: an error, not a hang. */
	ret = nvp_mig_data_size(&v1, &sz);
	EXPECT_NE(0, ret) TH_LOG("MIG_DATA_SIZE answered %llu without a PF",
				 (unsigned long long)sz);

	/* VF2: the rest of the stream goes in, but loading it needs the PF. */
	EXPECT_EQ(0, nvp_mig_write_all(rfd, stream + len / 2, len - len / 2, 0));
	close(rfd);
	ret = nvp_mig_set(&v2, VFIO_DEVICE_STATE_STOP, NULL);
	EXPECT_EQ(-ENODEV, ret) TH_LOG("RESUMING -> STOP without a PF: %s", strerror(-ret));
	ASSERT_EQ(0, nvp_mig_get(&v2, &st));
	EXPECT_EQ((uint32_t)VFIO_DEVICE_STATE_RESUMING, st);
	ASSERT_EQ(0, nvp_vfio_reset(&v2)) TH_LOG("%s", nvp_lasterr());
	ASSERT_EQ(0, nvp_mig_get(&v2, &st));
	EXPECT_EQ((uint32_t)VFIO_DEVICE_STATE_RUNNING, st);

	/* VF1: back to RUNNING needs a Resume: ENODEV; the save file is gone. */
	ret = nvp_mig_set(&v1, VFIO_DEVICE_STATE_RUNNING, NULL);
	EXPECT_EQ(-ENODEV, ret) TH_LOG("STOP_COPY -> RUNNING without a PF: %s", strerror(-ret));
	ASSERT_EQ(0, nvp_mig_get(&v1, &st));
	TH_LOG("VF1 stopped in state %u", st);
	EXPECT_NE((uint32_t)VFIO_DEVICE_STATE_STOP_COPY, st);
	EXPECT_GT(0, read(sfd, head, sizeof(head)))
		TH_LOG("the save file serves data after STOP_COPY");
	close(sfd);
	ASSERT_EQ(0, nvp_vfio_reset(&v1)) TH_LOG("%s", nvp_lasterr());
	ASSERT_EQ(0, nvp_mig_get(&v1, &st));
	EXPECT_EQ((uint32_t)VFIO_DEVICE_STATE_RUNNING, st);
	/* A new migration cannot start: Suspend needs the PF. */
	ret = nvp_mig_set(&v1, VFIO_DEVICE_STATE_STOP, NULL);
	EXPECT_EQ(-ENODEV, ret) TH_LOG("RUNNING -> STOP without a PF: %s", strerror(-ret));
	ASSERT_EQ(0, nvp_mig_get(&v1, &st));
	EXPECT_EQ((uint32_t)VFIO_DEVICE_STATE_RUNNING, st);
	free(stream);
	stream = NULL;
	nvp_nvme_fini(&n);
	nvp_vfio_close(&v2);
	nvp_vfio_close(&v1);

	/* PF back and the VFs re-provisioned; the VFs stayed bound throughout. */
	ASSERT_EQ(0, restore_bed(self, false)) TH_LOG("%s", nvp_lasterr());
	self->restored = true;

	/* VF1 runs again and holds the data; and migrates to VF2 again. */
	ASSERT_EQ(0, nvp_vfio_open(&v1, self->vf[0])) TH_LOG("%s", nvp_lasterr());
	ASSERT_EQ(0, nvp_vfio_open(&v2, self->vf[1])) TH_LOG("%s", nvp_lasterr());
	ASSERT_EQ(0, nvp_vfio_map_bar0(&v2)) TH_LOG("%s", nvp_lasterr());
	ASSERT_EQ(0, nvp_nvme_bringup(&n, &v1, NVP_IOVA_BASE_DEFAULT, NSID))
		TH_LOG("VF1 after the PF came back: %s", nvp_lasterr());
	ASSERT_EQ(0, verify_blocks(&n, lba0, gen)) TH_LOG("%s", nvp_lasterr());
	ASSERT_EQ(0, write_blocks(&n, lba0, gen + 1)) TH_LOG("%s", nvp_lasterr());
	ASSERT_EQ(0, map_guest_into(&n, &v2)) TH_LOG("%s", nvp_lasterr());
	len = save(_metadata, &v1, &stream);
	ASSERT_GT(len, (ssize_t)0) TH_LOG("save after the PF came back: %s", strerror((int)-len));
	ret = load(&v2, stream, len);
	ASSERT_EQ(0, ret) TH_LOG("load after the PF came back: %s", strerror(-ret));
	free(stream);
	ASSERT_EQ(0, nvp_mig_set(&v2, VFIO_DEVICE_STATE_RUNNING, NULL));
	n.v = &v2;
	EXPECT_EQ(0, verify_blocks(&n, lba0, gen + 1)) TH_LOG("%s", nvp_lasterr());
	nvp_mig_set(&v1, VFIO_DEVICE_STATE_RUNNING, NULL);
	nvp_nvme_disable(&n);
	n.v = &v1;
	nvp_nvme_fini(&n);
	nvp_vfio_close(&v2);
	nvp_vfio_close(&v1);
}

TEST_HARNESS_MAIN
