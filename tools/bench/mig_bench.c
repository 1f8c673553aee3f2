// SPDX-License-Identifier: GPL-2.0
/*
 * Stop-copy breakdown of a VF migration through the VFIO migration uAPI
 * (nvme_vfio_pci), next to the raw latency of the same TP4159 admin
 * commands issued by NVMe passthrough on the PF, in one run. A benchmark:
 * it prints numbers and never fails on them.
 *
 * usage (in the test VM, as root): mig_bench VF1 VF2 PFDEV SCID3 [ROUNDS]
 *   VF1, VF2  two provisioned VFs bound to nvme_vfio_pci
 *   PFDEV     the PF's /dev/nvmeN
 *   SCID3     a third provisioned secondary controller, not in use, for the
 *             passthrough measurements
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

static uint8_t stream[1 << 20];

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

int main(int argc, char **argv)
{
	enum { SUSP, SAVE, LOAD, RES, TOT, NPH };
	static const char *const names[NPH] = { "suspend (RUNNING->STOP)",
		"get state + stream (->STOP_COPY, read)", "validate + set state (->RESUMING, write, ->STOP)",
		"resume (->RUNNING)", "total" };
	double d[NPH][64], p[NPH][64];
	struct nvp_vfio v[2] = { { .devfd = -1, .iommufd = -1 }, { .devfd = -1, .iommufd = -1 } };
	struct nvp_nvme n = { 0 };
	int rounds = argc > 5 ? atoi(argv[5]) : 15, pf, r, i, from = 0;
	uint16_t scid3;
	size_t slen = 0, tp_len = 0;
	static uint8_t st[1 << 16];

	if (argc < 5 || rounds < 1 || rounds > 64) {
		fprintf(stderr, "usage: %s VF1 VF2 PFDEV SCID3 [ROUNDS<=64]\n", argv[0]);
		return 2;
	}
	scid3 = (uint16_t)atoi(argv[4]);
	if (nvp_vfio_open(&v[0], argv[1]) || nvp_vfio_open(&v[1], argv[2]) ||
	    nvp_vfio_map_bar0(&v[1]) || nvp_nvme_init(&n, &v[0], NVP_IOVA_BASE_DEFAULT) ||
	    nvp_nvme_enable(&n) || nvp_nvme_identify_ctrl(&n) || nvp_nvme_identify_ns(&n, 1) ||
	    nvp_nvme_create_ioq(&n)) {
		fprintf(stderr, "set-up: %s\n", nvp_lasterr());
		return 1;
	}
	/* The guest's memory at the same IOVAs in VF2's IOAS. */
	if (nvp_nvme_map_into(&n, &v[1]) || nvp_bus_master(&v[1], true)) {
		fprintf(stderr, "set-up: %s\n", nvp_lasterr());
		return 1;
	}

	for (r = 0; r < rounds; r++) {
		struct nvp_vfio *s = &v[from], *t = &v[!from];
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
		slen = 0;
		while ((got = read(fd, stream + slen, sizeof(stream) - slen)) > 0)
			slen += got;
		close(fd);
		t1 = now_us(); d[SAVE][r] = t1 - t0; t0 = t1;
		if (nvp_mig_set(t, VFIO_DEVICE_STATE_RESUMING, &fd) || write(fd, stream, slen) != (ssize_t)slen)
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
		n.v = t;
		if (nvp_nvme_rw(&n, false, 1, 0)) {
			fprintf(stderr, "round %d: I/O on the destination failed: %s\n", r, nvp_lasterr());
			return 1;
		}
		from = !from;
	}

	/* Passthrough: the same commands on an idle secondary controller. */
	pf = open(argv[3], O_RDWR);
	if (pf < 0) {
		perror(argv[3]);
		return 1;
	}
	for (r = 0; r < rounds; r++) {
		double t0 = now_us(), t1;
		uint32_t total;

		if (admin(pf, 0x41, 0, scid3 | 1u << 16, 0, NULL, 0))	/* Suspend */
			goto pfail;
		t1 = now_us(); p[SUSP][r] = t1 - t0; t0 = t1;
		/* Get State: header, then the rest (CSVI 1, CSUUIDI 1), as the driver does. */
		if (admin(pf, 0x42, 1u << 16, scid3 | 1u << 16, 11, st, 48))
			goto pfail;
		total = 48 + 4 * (*(uint32_t *)(st + 16) + *(uint32_t *)(st + 32));
		if (total > sizeof(st) || admin(pf, 0x42, 1u << 16, scid3 | 1u << 16, total / 4 - 1, st, total))
			goto pfail;
		t1 = now_us(); p[SAVE][r] = t1 - t0; t0 = t1;
		/* Set State of the same state back (a disabled controller: registers only). */
		if (admin(pf, 0x41, 2 | 3u << 16, scid3 | 1u << 16 | 1u << 24, total / 4, st, total))
			goto pfail;
		t1 = now_us(); p[LOAD][r] = t1 - t0; t0 = t1;
		if (admin(pf, 0x41, 1, scid3, 0, NULL, 0))		/* Resume */
			goto pfail;
		t1 = now_us(); p[RES][r] = t1 - t0;
		p[TOT][r] = p[SUSP][r] + p[SAVE][r] + p[LOAD][r] + p[RES][r];
	}

	printf("# stop-copy breakdown, %d rounds, median microseconds (TCG guest: absolute\n"
	       "# numbers are slow; the ratio is what matters)\n", rounds);
	printf("%-52s %12s %12s %8s\n", "phase", "driver", "passthru", "ratio");
	for (i = 0; i < NPH; i++) {
		double a = median(d[i], rounds), b = median(p[i], rounds);

		printf("%-52s %12.0f %12.0f %8.2f\n", names[i], a, b, b > 0 ? a / b : 0);
	}
	/* The stream's NVME_STATE section (after header and IDENTITY) is the source's TP4159 state. */
	tp_len = *(uint32_t *)(stream + 32 + 8 + 48 + 4);
	printf("stream bytes %zu, TP4159 controller state of the source %zu bytes (1 I/O queue pair,\n"
	       "vendor state included), ratio %.2f\n", slen, tp_len, tp_len ? (double)slen / tp_len : 0);
	return 0;
fail:
	fprintf(stderr, "migration round failed: %s\n", strerror(errno));
	return 1;
pfail:
	perror("passthrough");
	return 1;
}
