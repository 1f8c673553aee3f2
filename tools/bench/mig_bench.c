// SPDX-License-Identifier: GPL-2.0
/*
 * Stop-copy breakdown of a VF migration through the VFIO migration uAPI
 * (nvme_vfio_pci), next to the raw latency of the same TP4159 admin
 * commands issued by NVMe passthrough on the PF, in one run, for 1, 8 and
 * the most I/O queue pairs the VF allows. A benchmark: it prints numbers
 * and never fails on them.
 *
 * usage (in the test VM, as root):
 *   mig_bench VF1 VF2 PFDEV SCID3 VF3 SCID4 VF4 [ROUNDS]
 *   VF1, VF2      two provisioned VFs bound to nvme_vfio_pci, same VQ/VI
 *   PFDEV         the PF's /dev/nvmeN
 *   SCID3, VF3    a third and a fourth provisioned secondary controller and
 *   SCID4, VF4    their VFs (bound to no driver), for the passthrough
 *                 measurements
 *
 * For each queue count N (1, 8, the maximum; the maximum is what Set
 * Features Number of Queues allocates on VF1, at most NVP_MAX_IOQ): VF1's
 * controller is brought up with N I/O queue pairs, interrupts on, queues
 * sharing the VF's vectors round-robin when there are fewer vectors than
 * queues. Then ROUNDS + 1 rounds (the first a warm-up, not counted), each
 * one migration through the driver (VF1 -> VF2, then back, ...) and one by
 * raw admin commands on the PF between SCID3 and SCID4: Suspend (source);
 * Get State, header then the rest; Suspend + Set State (destination, reset
 * by FLR beforehand, not timed); Resume (destination) - what the driver
 * issues on the same arcs. SCID3 first gets the TP4159 state of the
 * driver's first migration (not timed), so both move the same queues.
 * Output: Documentation/testbed.rst, "Stop-copy benchmark".
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

#include <linux/nvme_ioctl.h>
#include <linux/vfio.h>

#include "lib/vfio_mig.h"
#include "lib/vfio_nvme.h"

static double now_us(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec * 1e6 + t.tv_nsec / 1e3;
}

enum { SUSP, SAVE, LOAD, RES, TOT, NPH };

static const char *const names[NPH] = {
	"suspend (RUNNING->STOP)",
	"get state, read stream (->STOP_COPY)",
	"write stream, set state (RESUMING->STOP)",
	"resume (->RUNNING)",
	"total",
};

static uint8_t stream[1 << 20];
static uint8_t st[1 << 20];

static int cmp_d(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static double median(double *v, int n)
{
	qsort(v, n, sizeof(*v), cmp_d);
	return v[n / 2];
}

static int admin(int fd, uint8_t opc, uint32_t c10, uint32_t c11, uint32_t c15, void *buf,
		 uint32_t len)
{
	struct nvme_admin_cmd c = { .opcode = opc, .cdw10 = c10, .cdw11 = c11, .cdw15 = c15,
				    .addr = (uintptr_t)buf, .data_len = len };

	return ioctl(fd, NVME_IOCTL_ADMIN_CMD, &c);
}

/* Migration Send / Receive on the PF, as the driver issues them (CSVI 1, CSUUIDI 1). */
static int pt_suspend(int pf, uint16_t scid)
{
	return admin(pf, 0x41, 0, scid | 1u << 16, 0, NULL, 0);
}

static int pt_resume(int pf, uint16_t scid)
{
	return admin(pf, 0x41, 1, scid, 0, NULL, 0);
}

static int pt_set_state(int pf, uint16_t scid, const void *buf, uint32_t len)
{
	return admin(pf, 0x41, 2 | 3u << 16, scid | 1u << 16 | 1u << 24, len / 4, (void *)buf, len);
}

/* Get State: the 48-byte header, then all of it. Returns the length, 0 on error. */
static uint32_t pt_get_state(int pf, uint16_t scid)
{
	uint32_t total;

	if (admin(pf, 0x42, 1u << 16, scid | 1u << 16, 11, st, 48))
		return 0;
	total = 48 + 4 * (*(uint32_t *)(st + 16) + *(uint32_t *)(st + 32));
	if (total > sizeof(st) || admin(pf, 0x42, 1u << 16, scid | 1u << 16, total / 4 - 1, st, total))
		return 0;
	return total;
}

/* A function level reset through sysfs: the controller disabled, queue-free, not suspended. */
static int flr(const char *bdf)
{
	return nvp_pci_write_attr(bdf, "reset", "1");
}

struct bench {
	struct nvp_vfio v[2];
	struct nvp_nvme n;
	uint16_t nvec;
	int rounds, pf;
	uint16_t scid[2];		/* passthrough pair */
	const char *bdf[2];
};

/* One migration of the controller through the driver, v[from] -> v[!from]; phases into d[][r]. */
static int drv_round(struct bench *b, uint16_t nq, int r, int *from, double (*d)[65],
		     size_t *slen)
{
	struct nvp_vfio *s = &b->v[*from], *t = &b->v[!*from];
	double t0, t1;
	ssize_t got;
	int fd;

	/* The destination starts clean (not timed). */
	nvp_vfio_reset(t);
	nvp_mig_set(t, VFIO_DEVICE_STATE_RUNNING, NULL);

	t0 = now_us();
	if (nvp_mig_set(s, VFIO_DEVICE_STATE_STOP, NULL))
		goto fail;
	t1 = now_us(); d[SUSP][r] = t1 - t0; t0 = t1;
	if (nvp_mig_set(s, VFIO_DEVICE_STATE_STOP_COPY, &fd))
		goto fail;
	*slen = 0;
	while ((got = read(fd, stream + *slen, sizeof(stream) - *slen)) > 0)
		*slen += got;
	close(fd);
	t1 = now_us(); d[SAVE][r] = t1 - t0; t0 = t1;
	if (nvp_mig_set(t, VFIO_DEVICE_STATE_RESUMING, &fd) ||
	    write(fd, stream, *slen) != (ssize_t)*slen)
		goto fail;
	close(fd);
	if (nvp_mig_set(t, VFIO_DEVICE_STATE_STOP, NULL))
		goto fail;
	t1 = now_us(); d[LOAD][r] = t1 - t0; t0 = t1;
	if (nvp_mig_set(t, VFIO_DEVICE_STATE_RUNNING, NULL))
		goto fail;
	t1 = now_us(); d[RES][r] = t1 - t0;
	d[TOT][r] = d[SUSP][r] + d[SAVE][r] + d[LOAD][r] + d[RES][r];
	nvp_mig_set(s, VFIO_DEVICE_STATE_RUNNING, NULL);
	b->n.v = t;
	/* The last queue carries on too (the first is checked at set-up). */
	if (nvp_nvme_rw_q(&b->n, &b->n.ioq[nq - 1], false, 1, 0, b->n.rbuf_iova)) {
		fprintf(stderr, "%u queue pairs, round %d: I/O on the destination failed: %s\n",
			nq, r, nvp_lasterr());
		return 1;
	}
	*from = !*from;
	return 0;
fail:
	fprintf(stderr, "%u queue pairs: migration round %d failed: %s\n", nq, r, strerror(errno));
	return 1;
}

/* The same by passthrough, scid[ps] -> scid[!ps]; phases into p[][r]. */
static int pt_round(struct bench *b, uint16_t nq, int r, int *ps, double (*p)[65])
{
	uint16_t s = b->scid[*ps], t = b->scid[!*ps];
	double t0, t1;
	uint32_t total;

	errno = 0;
	if (flr(b->bdf[!*ps]))			/* the destination starts clean */
		goto fail;
	t0 = now_us();
	if (pt_suspend(b->pf, s))
		goto fail;
	t1 = now_us(); p[SUSP][r] = t1 - t0; t0 = t1;
	total = pt_get_state(b->pf, s);
	if (!total)
		goto fail;
	t1 = now_us(); p[SAVE][r] = t1 - t0; t0 = t1;
	if (pt_suspend(b->pf, t) || pt_set_state(b->pf, t, st, total))
		goto fail;
	t1 = now_us(); p[LOAD][r] = t1 - t0; t0 = t1;
	if (pt_resume(b->pf, t))
		goto fail;
	t1 = now_us(); p[RES][r] = t1 - t0;
	p[TOT][r] = p[SUSP][r] + p[SAVE][r] + p[LOAD][r] + p[RES][r];
	*ps = !*ps;
	return 0;
fail:
	fprintf(stderr, "%u queue pairs: passthrough round %d failed: %s\n", nq, r,
		errno ? strerror(errno) : "NVMe error status");
	return 1;
}

static double min_of(const double *v, int n)
{
	double m = v[0];
	int i;

	for (i = 1; i < n; i++)
		m = v[i] < m ? v[i] : m;
	return m;
}

/*
 * One table: N I/O queue pairs. Each round is one migration through the
 * driver, then one by passthrough, so that a busy host slows both alike.
 */
static int run_config(struct bench *b, uint16_t nq)
{
	/* Slot 0: a warm-up round (TCG translates each new code path once), not counted. */
	double d[NPH][65], p[NPH][65];
	size_t slen = 0, tp_len = 0;
	int r, i, from = 0, ps = 0;
	uint16_t nv = nq < b->nvec ? nq : b->nvec;

	/* VF1 with a fresh controller and N I/O queue pairs, VF2 clean (not timed). */
	b->n.v = &b->v[0];
	if (nvp_vfio_reset(&b->v[0]) || nvp_vfio_reset(&b->v[1]) ||
	    nvp_mig_set(&b->v[0], VFIO_DEVICE_STATE_RUNNING, NULL) ||
	    nvp_mig_set(&b->v[1], VFIO_DEVICE_STATE_RUNNING, NULL) ||
	    nvp_nvme_enable(&b->n) || nvp_nvme_create_ioqs(&b->n, nq, b->nvec) ||
	    nvp_nvme_rw(&b->n, true, 1, 0)) {
		fprintf(stderr, "set-up of %u queue pairs: %s\n", nq, nvp_lasterr());
		return 1;
	}

	for (r = 0; r <= b->rounds; r++) {
		if (drv_round(b, nq, r, &from, d, &slen))
			return 1;
		if (r)
			goto pt;
		/*
		 * After the first: the stream's NVME_STATE section (after the
		 * header and IDENTITY) is the source's TP4159 state. Loaded into
		 * the first passthrough controller (not timed), it gives that
		 * one the same queues.
		 */
		tp_len = *(uint32_t *)(stream + 32 + 8 + 48 + 4);
		if (tp_len > sizeof(st) || 96 + tp_len > slen) {
			fprintf(stderr, "%u queue pairs: no NVME_STATE section where expected\n", nq);
			return 1;
		}
		memcpy(st, stream + 96, tp_len);
		errno = 0;
		if (flr(b->bdf[0]) || flr(b->bdf[1]) || pt_suspend(b->pf, b->scid[0]) ||
		    pt_set_state(b->pf, b->scid[0], st, tp_len) || pt_resume(b->pf, b->scid[0])) {
			fprintf(stderr, "%u queue pairs: passthrough set-up: %s\n", nq,
				errno ? strerror(errno) : "NVMe error status");
			return 1;
		}
pt:
		if (pt_round(b, nq, r, &ps, p))
			return 1;
	}
	/* Leave both idle: disabled and queue-free. */
	flr(b->bdf[0]);
	flr(b->bdf[1]);

	printf("\n# %u I/O queue pair%s, interrupts on %u vector%s: stop-copy breakdown, "
	       "microseconds\n", nq, nq == 1 ? "" : "s", nv, nv == 1 ? "" : "s");
	printf("%-40s %8s %8s %6s %9s %8s %6s\n", "phase", "driver", "passthru", "ratio",
	       "min: drv", "passthru", "ratio");
	for (i = 0; i < NPH; i++) {
		double a = median(d[i] + 1, b->rounds), c = median(p[i] + 1, b->rounds);
		double am = min_of(d[i] + 1, b->rounds), cm = min_of(p[i] + 1, b->rounds);

		printf("%-40s %8.0f %8.0f %6.2f %9.0f %8.0f %6.2f\n", names[i], a, c,
		       c > 0 ? a / c : 0, am, cm, cm > 0 ? am / cm : 0);
	}
	printf("%-40s %8zu %8zu %6.2f\n", "bytes: stream, TP4159 state", slen, tp_len,
	       tp_len ? (double)slen / tp_len : 0);
	return 0;
}

int main(int argc, char **argv)
{
	static struct bench b = {
		.v = { { .devfd = -1, .iommufd = -1 }, { .devfd = -1, .iommufd = -1 } },
	};
	uint16_t nvq = 0, nvi = 0, max, qs[3];
	uint32_t nmsix = 0;
	int nqs = 0, i;

	b.rounds = argc > 8 ? atoi(argv[8]) : 15;
	if (argc < 8 || b.rounds < 1 || b.rounds > 64) {
		fprintf(stderr, "usage: %s VF1 VF2 PFDEV SCID3 VF3 SCID4 VF4 [ROUNDS<=64]\n", argv[0]);
		return 2;
	}
	b.scid[0] = (uint16_t)atoi(argv[4]);
	b.bdf[0] = argv[5];
	b.scid[1] = (uint16_t)atoi(argv[6]);
	b.bdf[1] = argv[7];
	b.pf = open(argv[3], O_RDWR);
	if (b.pf < 0) {
		perror(argv[3]);
		return 1;
	}
	if (nvp_vfio_open(&b.v[0], argv[1]) || nvp_vfio_open(&b.v[1], argv[2]) ||
	    nvp_vfio_map_bar0(&b.v[1]) || nvp_nvme_init(&b.n, &b.v[0], NVP_IOVA_BASE_DEFAULT) ||
	    nvp_nvme_enable(&b.n) || nvp_nvme_identify_ctrl(&b.n) || nvp_nvme_identify_ns(&b.n, 1) ||
	    nvp_nvme_identify_res(&b.n, &nvq, &nvi) ||
	    nvp_vfio_irq_count(&b.v[0], VFIO_PCI_MSIX_IRQ_INDEX, &nmsix)) {
		fprintf(stderr, "set-up: %s\n", nvp_lasterr());
		return 1;
	}
	/* Interrupts as a guest has them: every vector the VF has, on both VFs. */
	b.nvec = (uint16_t)(nvi < nmsix ? nvi : nmsix);
	if (b.nvec > NVP_MAX_VEC)
		b.nvec = NVP_MAX_VEC;
	if (!b.nvec || nvp_vfio_msix_enable(&b.v[0], b.nvec) ||
	    nvp_vfio_msix_enable(&b.v[1], b.nvec) ||
	    /* The most I/O queue pairs: what Set Features Number of Queues allocates. */
	    nvp_nvme_create_ioqs(&b.n, 0, 0)) {
		fprintf(stderr, "set-up: %u vectors: %s\n", b.nvec, nvp_lasterr());
		return 1;
	}
	/* The guest's memory at the same IOVAs in VF2's IOAS. */
	if (nvp_nvme_map_into(&b.n, &b.v[1]) || nvp_bus_master(&b.v[1], true)) {
		fprintf(stderr, "set-up: %s\n", nvp_lasterr());
		return 1;
	}
	max = b.n.nioq;
	qs[nqs++] = 1;
	if (max > 8)
		qs[nqs++] = 8;
	if (max > 1)
		qs[nqs++] = max;
	printf("# mig_bench: %s -> %s, %d rounds per table after a warm-up round;\n"
	       "# VF: %u VQ, %u VI, %u MSI-X vectors;\n"
	       "# most I/O queue pairs: %u (Set Features Number of Queues, library cap %u)\n",
	       argv[1], argv[2], b.rounds, nvq, nvi, nmsix, max, NVP_MAX_IOQ);
	printf("# per phase: the median over the rounds (driver, passthrough, ratio), then the\n"
	       "# minimum; ratio = driver / passthrough (goal <= 1.10); total = the sum of the\n"
	       "# four phases in each round. bytes: the whole stream, the TP4159 controller\n"
	       "# state in it (vendor state included), ratio (goal <= 1.10). TCG guest on a\n"
	       "# shared host: absolute times are slow and noisy; the ratios are what matter\n");
	fflush(stdout);
	for (i = 0; i < nqs; i++) {
		if (run_config(&b, qs[i]))
			return 1;
		fflush(stdout);
	}
	printf("# mig_bench end\n");
	return 0;
}
