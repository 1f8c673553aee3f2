// SPDX-License-Identifier: GPL-2.0
/*
 * Faults around migration, through the VFIO uAPI:
 *
 * reset.*    VFIO_DEVICE_RESET in every migration state (RUNNING, STOP,
 *            STOP_COPY with the save file partly read, RESUMING with half a
 *            stream written): the VF is RUNNING again, its data file dead,
 *            the guest's stamped blocks (an NVMe reset does not touch the
 *            namespace) read back, and the guest migrates afterwards.
 * multi.*    two and four VFs migrating at once through the one PF: each VF
 *            runs a guest, and every guest moves to the next VF (a rotation,
 *            one thread per guest, three rounds), its data verified on every
 *            destination. SKIPs when the bed has fewer VFs (NVP_VF,
 *            NVP_VF2, NVP_VF3, NVP_VF4).
 * rogue.*    a guest sending the live-migration opcodes (Migration Send and
 *            Receive, Controller Data Queue, Track Send and Receive) and the
 *            device model's vendor ones (C5h, C6h) on its VF's admin queue,
 *            aimed at its sibling and at itself: each completes with an
 *            error status and moves no state, while the sibling VF migrates
 *            (save, reset, load) over and over, its data verified.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "kselftest_harness.h"
#include "nvp_common.h"
#include "lib/mig_guest.h"
#include "lib/vfio_mig.h"

#define NBLK	4
#define MAXVF	4
#define ROUNDS	3
/* Each guest's memory: its own IOVA span, so that every VF can hold every guest's. */
#define GUEST_IOVA(i)	(NVP_IOVA_BASE_DEFAULT + (uint64_t)(i) * 0x10000000ull)

static const char *const vf_env[MAXVF] = { "NVP_VF", "NVP_VF2", "NVP_VF3", "NVP_VF4" };

/* A guest: the userspace driver on a VF, with stamped blocks at lba0. */
struct guest {
	struct nvp_nvme n;
	uint64_t lba0;
	uint32_t gen;
};

/* Open the first @nvf VFs of the environment and map their BAR0; -ENOENT if unset. */
static int open_vfs(struct nvp_vfio *v, int nvf)
{
	int i, ret;

	for (i = 0; i < MAXVF; i++)
		v[i].devfd = v[i].iommufd = -1;
	for (i = 0; i < nvf; i++) {
		if (!nvp_env(vf_env[i]))
			return -ENOENT;
		ret = nvp_vfio_open(&v[i], nvp_env(vf_env[i]));
		if (!ret)
			ret = nvp_vfio_map_bar0(&v[i]);
		if (ret)
			return ret;
	}
	return 0;
}

static int vfs_in_env(void)
{
	int i;

	for (i = 0; i < MAXVF && nvp_env(vf_env[i]); i++)
		;
	return i;
}

/* A guest on @v: enabled, one I/O queue pair, NBLK blocks written. Guest @i's LBAs. */
static int guest_start(struct guest *g, struct nvp_vfio *v, int i)
{
	int ret = nvp_nvme_bringup(&g->n, v, GUEST_IOVA(i), NVP_NSID);

	if (ret)
		return ret;
	g->lba0 = g->n.nsze / 2 + 4096 + 64 * i;
	g->gen = (uint32_t)time(NULL) + 1000 * i;
	return nvp_blocks_write(&g->n, g->lba0, NBLK, g->gen);
}

static void guest_stop(struct guest *g, struct nvp_vfio *home)
{
	if (!g->n.v)
		return;
	if (g->n.v->bar0)
		nvp_nvme_disable(&g->n);
	g->n.v = home;
	nvp_nvme_fini(&g->n);
}

static void vfs_close(struct nvp_vfio *v, int nvf)
{
	int i;

	for (i = 0; i < nvf; i++) {
		if (v[i].devfd >= 0 && nvp_mig_set(&v[i], VFIO_DEVICE_STATE_RUNNING, NULL))
			nvp_vfio_reset(&v[i]);
		nvp_vfio_close(&v[i]);
	}
}

/*
 * Migrate guest @g from @from to @to (reset first, as a VMM's fresh
 * destination), then check its blocks there and write and check new ones.
 * @from is left in STOP. 0 or -errno / the bad block, with nvp_lasterr().
 */
static int guest_migrate(struct guest *g, struct nvp_vfio *from, struct nvp_vfio *to)
{
	uint8_t *stream = NULL;
	ssize_t len = nvp_mig_save(from, &stream);
	int ret;

	if (len < 0)
		return (int)len;
	ret = nvp_mig_set(from, VFIO_DEVICE_STATE_STOP, NULL);
	if (!ret)
		ret = nvp_vfio_reset(to);
	if (!ret) {
		ret = nvp_mig_load(to, stream, len, 0);
		if (ret)
			nvp_seterr("%s: load of %s's stream: %s", to->bdf, from->bdf, strerror(-ret));
	}
	free(stream);
	if (!ret)
		ret = nvp_mig_set(to, VFIO_DEVICE_STATE_RUNNING, NULL);
	if (ret)
		return ret;
	g->n.v = to;
	ret = nvp_blocks_verify(&g->n, g->lba0, NBLK, g->gen);
	if (!ret)
		ret = nvp_blocks_write(&g->n, g->lba0, NBLK, ++g->gen);
	if (!ret)
		ret = nvp_blocks_verify(&g->n, g->lba0, NBLK, g->gen);
	return ret;
}

/* In a fixture setup: NVP_VF and NVP_VF2 in @v, bound to the driver, migratable. */
#define SETUP_TWO_VFS(v) do { \
	int __ret = open_vfs((v), 2); \
	if (__ret == -ENOENT) \
		SKIP(return, "NVP_VF and NVP_VF2 are needed"); \
	ASSERT_EQ(0, __ret) TH_LOG("%s", nvp_lasterr()); \
	NVP_ASSERT_BOUND_TO_DRIVER((v)[0].bdf); \
	NVP_ASSERT_BOUND_TO_DRIVER((v)[1].bdf); \
	NVP_REQUIRE_MIGRATION(&(v)[0]); \
} while (0)

/* ---- VFIO_DEVICE_RESET in every migration state ---- */

FIXTURE(reset) {
	struct nvp_vfio v[2];
	struct guest g;
};

FIXTURE_VARIANT(reset) {
	uint32_t state;
};

FIXTURE_VARIANT_ADD(reset, running) { .state = VFIO_DEVICE_STATE_RUNNING };
FIXTURE_VARIANT_ADD(reset, stop) { .state = VFIO_DEVICE_STATE_STOP };
FIXTURE_VARIANT_ADD(reset, stop_copy_partly_read) { .state = VFIO_DEVICE_STATE_STOP_COPY };
FIXTURE_VARIANT_ADD(reset, resuming_partly_written) { .state = VFIO_DEVICE_STATE_RESUMING };

FIXTURE_SETUP(reset)
{
	SETUP_TWO_VFS(self->v);
	ASSERT_EQ(0, guest_start(&self->g, &self->v[0], 0)) TH_LOG("%s", nvp_lasterr());
	ASSERT_EQ(0, nvp_guest_map_into(&self->g.n, &self->v[1])) TH_LOG("%s", nvp_lasterr());
}

FIXTURE_TEARDOWN(reset)
{
	guest_stop(&self->g, &self->v[0]);
	vfs_close(self->v, 2);
}

TEST_F_TIMEOUT(reset, in_state, 300)
{
	struct nvp_vfio *v1 = &self->v[0], *v2 = &self->v[1], *victim = v1;
	uint8_t head[64], *stream = NULL;
	uint32_t st = ~0u;
	ssize_t len = 0;
	int fd = -1;

	switch (variant->state) {
	case VFIO_DEVICE_STATE_STOP:
		ASSERT_EQ(0, nvp_mig_set(v1, VFIO_DEVICE_STATE_STOP, NULL));
		break;
	case VFIO_DEVICE_STATE_STOP_COPY:
		ASSERT_EQ(0, nvp_mig_set(v1, VFIO_DEVICE_STATE_STOP_COPY, &fd));
		ASSERT_LE(0, fd);
		ASSERT_EQ((ssize_t)sizeof(head), read(fd, head, sizeof(head)));
		EXPECT_EQ(0, memcmp(head, "NVMEVFMS", 8));
		break;
	case VFIO_DEVICE_STATE_RESUMING:
		len = nvp_mig_save(v1, &stream);
		ASSERT_LT((ssize_t)0, len) TH_LOG("%s", nvp_lasterr());
		ASSERT_EQ(0, nvp_mig_set(v1, VFIO_DEVICE_STATE_STOP, NULL));
		ASSERT_EQ(0, nvp_mig_set(v2, VFIO_DEVICE_STATE_RESUMING, &fd));
		ASSERT_LE(0, fd);
		ASSERT_EQ(0, nvp_mig_write_all(fd, stream, len / 2, 1));
		victim = v2;
		break;
	}
	ASSERT_EQ(0, nvp_mig_get(victim, &st));
	ASSERT_EQ(variant->state, st);

	ASSERT_EQ(0, nvp_vfio_reset(victim)) TH_LOG("%s", nvp_lasterr());
	ASSERT_EQ(0, nvp_mig_get(victim, &st));
	EXPECT_EQ((uint32_t)VFIO_DEVICE_STATE_RUNNING, st);
	if (variant->state == VFIO_DEVICE_STATE_STOP_COPY) {
		EXPECT_GT(0, read(fd, head, sizeof(head))) TH_LOG("save file alive after a reset");
	} else if (variant->state == VFIO_DEVICE_STATE_RESUMING) {
		EXPECT_GT(0, write(fd, stream + len / 2, len - len / 2))
			TH_LOG("resume file alive after a reset");
	}
	if (fd >= 0)
		close(fd);
	free(stream);

	if (victim == v1) {
		/* The reset disabled the controller; the namespace kept the data. */
		ASSERT_EQ(0u, nvp_reg32(&self->g.n, NVME_REG_CSTS) & NVME_CSTS_RDY);
		ASSERT_EQ(0, nvp_nvme_enable(&self->g.n)) TH_LOG("%s", nvp_lasterr());
		ASSERT_EQ(0, nvp_nvme_create_ioq(&self->g.n)) TH_LOG("%s", nvp_lasterr());
	} else {
		/* The source was only stopped: the migration is cancelled. */
		ASSERT_EQ(0, nvp_mig_set(v1, VFIO_DEVICE_STATE_RUNNING, NULL));
	}
	ASSERT_EQ(0, nvp_blocks_verify(&self->g.n, self->g.lba0, NBLK, self->g.gen))
		TH_LOG("after the reset: %s", nvp_lasterr());
	/* And both VFs migrate afterwards: VF1 -> VF2, data verified. */
	ASSERT_EQ(0, guest_migrate(&self->g, v1, v2)) TH_LOG("%s", nvp_lasterr());
}

/* ---- several VFs migrating at once ---- */

FIXTURE(multi) {
	struct nvp_vfio v[MAXVF];
	struct guest g[MAXVF];
	int nvf;
};

FIXTURE_VARIANT(multi) {
	int nvf;
};

FIXTURE_VARIANT_ADD(multi, two_vfs) { .nvf = 2 };
FIXTURE_VARIANT_ADD(multi, four_vfs) { .nvf = 4 };

FIXTURE_SETUP(multi)
{
	int i, j, have = vfs_in_env();

	self->nvf = 0;
	for (i = 0; i < MAXVF; i++)
		self->v[i].devfd = self->v[i].iommufd = -1;
	if (have < variant->nvf)
		SKIP(return, "the bed has %d VFs (NVP_VF..NVP_VF4), %d needed", have, variant->nvf);
	self->nvf = variant->nvf;
	ASSERT_EQ(0, open_vfs(self->v, self->nvf)) TH_LOG("%s", nvp_lasterr());
	for (i = 0; i < self->nvf; i++)
		NVP_ASSERT_BOUND_TO_DRIVER(self->v[i].bdf);
	NVP_REQUIRE_MIGRATION(&self->v[0]);
	for (i = 0; i < self->nvf; i++) {
		ASSERT_EQ(0, guest_start(&self->g[i], &self->v[i], i))
			TH_LOG("guest %d on %s: %s", i, self->v[i].bdf, nvp_lasterr());
		for (j = 0; j < self->nvf; j++) {
			if (j != i) {
				ASSERT_EQ(0, nvp_guest_map_into(&self->g[i].n, &self->v[j]))
					TH_LOG("%s", nvp_lasterr());
			}
		}
	}
}

FIXTURE_TEARDOWN(multi)
{
	int i;

	for (i = 0; i < self->nvf; i++)
		guest_stop(&self->g[i], &self->v[i]);
	vfs_close(self->v, self->nvf);
}

struct mover {
	pthread_t th;
	struct nvp_vfio *v;
	struct guest *g;
	int i, nvf, err;
	pthread_barrier_t *bar;
	char why[300];
};

/*
 * Guest i: each round, from VF (i + r) % nvf to the next. Every source is
 * saved and reset before any load, so that a VF is never source and
 * destination at once.
 */
static void *mover_run(void *arg)
{
	struct mover *m = arg;
	int r;

	for (r = 0; r < ROUNDS; r++) {
		struct nvp_vfio *from = &m->v[(m->i + r) % m->nvf];
		struct nvp_vfio *to = &m->v[(m->i + r + 1) % m->nvf];
		uint8_t *stream = NULL;
		ssize_t len = -1;

		if (!m->err) {
			len = nvp_mig_save(from, &stream);
			m->err = len < 0 ? (int)len : nvp_mig_set(from, VFIO_DEVICE_STATE_STOP, NULL);
			if (!m->err)
				m->err = nvp_vfio_reset(from);
		}
		pthread_barrier_wait(m->bar);
		if (!m->err) {
			m->err = nvp_mig_load(to, stream, len, r & 1);
			if (!m->err)
				m->err = nvp_mig_set(to, VFIO_DEVICE_STATE_RUNNING, NULL);
			m->g->n.v = to;
			if (!m->err)
				m->err = nvp_blocks_verify(&m->g->n, m->g->lba0, NBLK, m->g->gen);
			if (!m->err)
				m->err = nvp_blocks_write(&m->g->n, m->g->lba0, NBLK, ++m->g->gen);
			if (m->err && !m->why[0])
				snprintf(m->why, sizeof(m->why), "round %d, %s -> %s: %d (%s)", r,
					 from->bdf, to->bdf, m->err, nvp_lasterr());
		}
		free(stream);
		pthread_barrier_wait(m->bar);
	}
	return NULL;
}

TEST_F_TIMEOUT(multi, rotate_guests_at_once, 300)
{
	struct mover m[MAXVF];
	pthread_barrier_t bar;
	int i;

	ASSERT_EQ(0, pthread_barrier_init(&bar, NULL, self->nvf));
	for (i = 0; i < self->nvf; i++) {
		m[i] = (struct mover){ .v = self->v, .g = &self->g[i], .i = i, .nvf = self->nvf,
				       .bar = &bar };
		ASSERT_EQ(0, pthread_create(&m[i].th, NULL, mover_run, &m[i]));
	}
	for (i = 0; i < self->nvf; i++)
		pthread_join(m[i].th, NULL);
	pthread_barrier_destroy(&bar);
	for (i = 0; i < self->nvf; i++) {
		EXPECT_EQ(0, m[i].err) TH_LOG("guest %d: %s", i, m[i].why);
	}
	/* Every guest, where it ended up, holds its last blocks. */
	for (i = 0; i < self->nvf; i++) {
		EXPECT_EQ(0, nvp_blocks_verify(&self->g[i].n, self->g[i].lba0, NBLK, self->g[i].gen))
			TH_LOG("guest %d on %s: %s", i, self->g[i].n.v->bdf, nvp_lasterr());
	}
	TH_LOG("%d guests x %d rounds migrated at once, %d blocks verified", self->nvf, ROUNDS,
	       self->nvf * ROUNDS * 2 * NBLK);
}

/* ---- a guest sending migration commands on its own VF ---- */

FIXTURE(rogue) {
	struct nvp_vfio v[2];
	struct guest g[2];	/* g[0]: the rogue on VF1; g[1]: the sibling on VF2 */
};

FIXTURE_SETUP(rogue)
{
	int i;

	SETUP_TWO_VFS(self->v);
	for (i = 0; i < 2; i++) {
		ASSERT_EQ(0, guest_start(&self->g[i], &self->v[i], i)) TH_LOG("%s", nvp_lasterr());
	}
}

FIXTURE_TEARDOWN(rogue)
{
	int i;

	for (i = 0; i < 2; i++)
		guest_stop(&self->g[i], &self->v[i]);
	vfs_close(self->v, 2);
}

struct sibling {
	struct guest *g;
	struct nvp_vfio *v;
	int done, err, migrations;
	char why[300];
};

static void *sibling_run(void *arg)
{
	struct sibling *s = arg;
	int i;

	for (i = 0; i < ROUNDS && !s->err; i++) {
		s->err = guest_migrate(s->g, s->v, s->v);
		if (s->err)
			snprintf(s->why, sizeof(s->why), "migration %d of %s: %d (%s)", i, s->v->bdf,
				 s->err, nvp_lasterr());
		else
			s->migrations++;
	}
	__atomic_store_n(&s->done, 1, __ATOMIC_RELEASE);
	return NULL;
}

TEST_F_TIMEOUT(rogue, lm_opcodes_refused_sibling_unaffected, 300)
{
	struct nvp_nvme *n = &self->g[0].n;
	uint16_t sib = self->g[1].n.cntlid, me = n->cntlid;
	const struct {
		const char *what;
		uint8_t opc;
		uint32_t cdw10, cdw11, cdw12, cdw15;
		bool data_in;		/* the controller would write the buffer */
	} cmd[] = {
		{ "Migration Send: Suspend sibling", 0x41, 0, sib | 1u << 16, 0, 0, false },
		{ "Migration Send: Suspend self", 0x41, 0, me | 1u << 16, 0, 0, false },
		{ "Migration Send: Resume sibling", 0x41, 1, sib, 0, 0, false },
		{ "Migration Send: Set State into sibling", 0x41, 2 | 3u << 16, sib, 0, 1024 / 4, false },
		{ "Migration Receive: Get State of sibling", 0x42, 0, sib, 0, 4096 / 4 - 1, true },
		{ "Migration Receive: Get State of self", 0x42, 0, me, 0, 4096 / 4 - 1, true },
		{ "Controller Data Queue: create", 0x3d, 0, 1u << 16, 4096 / 4, 0, true },
		{ "Track Send: log user data of sibling", 0x3e, 0, sib, 0, 0, false },
		{ "Track Send: track memory", 0x3e, 1, sib, 0, 0, false },
		{ "Track Receive", 0x45, 0, sib, 0, 4096 / 4 - 1, true },
		{ "vendor C5h", 0xc5, 0, sib, 0, 4096 / 4 - 1, true },
		{ "vendor C6h", 0xc6, 0, sib, 0, 4096 / 4 - 1, true },
	};
	const int ncmd = sizeof(cmd) / sizeof(cmd[0]);
	struct sibling s = { .g = &self->g[1], .v = &self->v[1] };
	uint8_t pattern[NVP_PAGE_SIZE];
	pthread_t th;
	int i, ret, sent = 0, passes = 0;

	memset(pattern, 0xa5, sizeof(pattern));
	ASSERT_EQ(0, pthread_create(&th, NULL, sibling_run, &s));
	/* Every command at least once, and on until the sibling is done. */
	do {
		for (i = 0; i < ncmd; i++) {
			struct nvme_sqe sqe = { .opc = cmd[i].opc, .cdw10 = cmd[i].cdw10,
						.cdw11 = cmd[i].cdw11, .cdw12 = cmd[i].cdw12,
						.cdw15 = cmd[i].cdw15, .prp1 = n->buf_iova };
			struct nvme_cqe cqe;

			memcpy(n->buf, pattern, sizeof(pattern));
			ret = nvp_nvme_submit(n, &n->aq, &sqe, &cqe, NVP_CMD_TIMEOUT_MS);
			if (!passes) {
				TH_LOG("%-40s opcode %02xh: status %#x", cmd[i].what, cmd[i].opc,
				       ret > 0 ? ret : 0);
			}
			EXPECT_LT(0, ret) TH_LOG("%s (opcode %02xh) on %s's admin queue: %s",
						 cmd[i].what, cmd[i].opc, self->v[0].bdf,
						 ret ? nvp_lasterr() : "succeeded");
			if (cmd[i].data_in) {
				EXPECT_EQ(0, memcmp(n->buf, pattern, sizeof(pattern)))
					TH_LOG("%s moved data into the guest's buffer", cmd[i].what);
			}
			sent++;
		}
		passes++;
	} while (!__atomic_load_n(&s.done, __ATOMIC_ACQUIRE));
	pthread_join(th, NULL);
	TH_LOG("%d commands refused in %d passes while the sibling migrated %d times", sent, passes,
	       s.migrations);
	EXPECT_EQ(0, s.err) TH_LOG("sibling: %s", s.why);
	EXPECT_EQ(ROUNDS, s.migrations);
	/* The rogue's own controller still works: admin queue, data. */
	EXPECT_EQ(0, nvp_nvme_identify_ctrl(n)) TH_LOG("%s", nvp_lasterr());
	EXPECT_EQ(0, nvp_blocks_verify(n, self->g[0].lba0, NBLK, self->g[0].gen))
		TH_LOG("%s", nvp_lasterr());
}

TEST_HARNESS_MAIN
