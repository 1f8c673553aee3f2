// SPDX-License-Identifier: GPL-2.0
/*
 * nvp_load: the L2 guest's workload for the end-to-end migration test.
 *
 * Writes stamped blocks to an NVMe namespace through the guest's stock nvme
 * driver (O_DIRECT, so every write and read is a command on the VF), reads
 * back and verifies, and keeps going until it is told to stop on a control
 * tty. Every block carries its LBA, a sequence number, the run's id and a
 * CRC-32C of the whole block; the program keeps the sequence number of the
 * last acknowledged write of every block, so a read that returns anything
 * else (a lost, stale, torn or misplaced write) is a mismatch.
 *
 * Loop: write the next block (a pseudo-random walk over the region), read it
 * back, and read one other already-written block. On "stop" (or the time
 * limit), read every written block once more, print a summary and exit 0
 * only when there were no I/O errors and no mismatches.
 *
 * Reads land in a ring of buffers (-k, default 256 = 1 MiB) and a buffer is
 * checked only when the ring comes back to it, a second or two later: in
 * between, only the device has written that memory (DMA) and the CPU has not
 * touched it. A live migration in that window carries the buffer's content
 * only if the hypervisor knows the device dirtied the page (IOMMU or device
 * dirty tracking, or QEMU's all-dirty fallback); if it does not, the
 * destination holds the page as it was before the read, and the check
 * reports a mismatch.
 *
 * usage: nvp_load DEVICE [-r MiB] [-b BYTES] [-k RING] [-c CONTROL_TTY] [-t SECONDS]
 *
 * Status lines on stdout, once a second:
 *   nvp-load: t=12.0 writes=N reads=N verified=N errors=N mismatches=N maxlat_ms=N
 * and at the end:
 *   nvp-load: DONE writes=N reads=N verified=N blocks=N errors=N mismatches=N maxlat_ms=N
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>
#include <sys/ioctl.h>
#include <linux/fs.h>

#define MAGIC 0x4e56504c4f414431ull /* "NVPLOAD1" */

struct stamp {
	uint64_t magic;
	uint64_t lba;	/* block index in the region */
	uint64_t seq;	/* write sequence number, 1-based */
	uint64_t run;	/* id of this run */
	uint32_t len;	/* block size */
	uint32_t pad;
};

static uint32_t crc_table[256];

static void crc_init(void)
{
	for (uint32_t i = 0; i < 256; i++) {
		uint32_t c = i;

		for (int k = 0; k < 8; k++)
			c = (c & 1) ? (c >> 1) ^ 0x82f63b78u : c >> 1;
		crc_table[i] = c;
	}
}

static uint32_t crc32c(const uint8_t *p, size_t n)
{
	uint32_t c = ~0u;

	while (n--)
		c = crc_table[(c ^ *p++) & 0xff] ^ (c >> 8);
	return ~c;
}

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static uint64_t rng_state;

static uint64_t rng(void)
{
	/* xorshift64* */
	rng_state ^= rng_state >> 12;
	rng_state ^= rng_state << 25;
	rng_state ^= rng_state >> 27;
	return rng_state * 0x2545f4914f6cdd1dull;
}

static size_t bs;
static uint64_t run_id;
static uint64_t writes, reads, verified, errors, mismatches;
static double maxlat;

static void fill(uint8_t *buf, uint64_t lba, uint64_t seq)
{
	struct stamp *s = (struct stamp *)buf;
	uint64_t x = lba * 0x9e3779b97f4a7c15ull ^ seq ^ run_id;

	for (size_t i = sizeof(*s); i + 8 <= bs - 4; i += 8) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		memcpy(buf + i, &x, 8);
	}
	s->magic = MAGIC;
	s->lba = lba;
	s->seq = seq;
	s->run = run_id;
	s->len = bs;
	s->pad = 0;
	uint32_t c = crc32c(buf, bs - 4);

	memcpy(buf + bs - 4, &c, 4);
}

/* Check a block read back against the last acknowledged write. */
static int check(const uint8_t *buf, uint64_t lba, uint64_t want_seq)
{
	const struct stamp *s = (const struct stamp *)buf;
	uint32_t c;

	memcpy(&c, buf + bs - 4, 4);
	if (s->magic != MAGIC || s->run != run_id || s->len != bs) {
		printf("nvp-load: MISMATCH block %llu: no stamp of this run\n",
		       (unsigned long long)lba);
		return -1;
	}
	if (crc32c(buf, bs - 4) != c) {
		printf("nvp-load: MISMATCH block %llu: checksum (seq %llu)\n",
		       (unsigned long long)lba, (unsigned long long)s->seq);
		return -1;
	}
	if (s->lba != lba || s->seq != want_seq) {
		printf("nvp-load: MISMATCH block %llu: holds block %llu seq %llu, expected seq %llu\n",
		       (unsigned long long)lba, (unsigned long long)s->lba,
		       (unsigned long long)s->seq, (unsigned long long)want_seq);
		return -1;
	}
	return 0;
}

static int do_io(int fd, uint8_t *buf, uint64_t lba, int wr)
{
	double t0 = now(), dt;
	ssize_t r;

	if (wr)
		r = pwrite(fd, buf, bs, (off_t)(lba * bs));
	else
		r = pread(fd, buf, bs, (off_t)(lba * bs));
	dt = now() - t0;
	if (dt > maxlat)
		maxlat = dt;
	if (r != (ssize_t)bs) {
		printf("nvp-load: I/O ERROR %s block %llu: %s\n", wr ? "write" : "read",
		       (unsigned long long)lba, r < 0 ? strerror(errno) : "short transfer");
		errors++;
		return -1;
	}
	if (wr)
		writes++;
	else
		reads++;
	return 0;
}

/* A read whose buffer is checked later. */
struct pending {
	uint64_t lba;
	uint64_t seq;	/* 0: slot unused */
};

static uint8_t *ring;
static struct pending *pend;
static size_t nring, ring_pos;

static void check_slot(size_t i)
{
	if (!pend[i].seq)
		return;
	if (check(ring + i * bs, pend[i].lba, pend[i].seq))
		mismatches++;
	else
		verified++;
	pend[i].seq = 0;
}

/* Read a block into the next ring buffer, checking what that buffer held. */
static void read_deferred(int fd, uint64_t lba, uint64_t want_seq)
{
	size_t i = ring_pos;

	ring_pos = (ring_pos + 1) % nring;
	check_slot(i);
	/* No poisoning of the buffer first: a CPU write would make the page
	 * dirty for the hypervisor and hide a missed device write. */
	if (do_io(fd, ring + i * bs, lba, 0) == 0) {
		pend[i].lba = lba;
		pend[i].seq = want_seq;
	}
}

static void status(const char *tag, double t, uint64_t blocks)
{
	printf("nvp-load: %s t=%.1f writes=%llu reads=%llu verified=%llu blocks=%llu errors=%llu mismatches=%llu maxlat_ms=%.0f\n",
	       tag, t, (unsigned long long)writes, (unsigned long long)reads,
	       (unsigned long long)verified, (unsigned long long)blocks,
	       (unsigned long long)errors, (unsigned long long)mismatches, maxlat * 1e3);
	fflush(stdout);
}

static int open_control(const char *path)
{
	struct termios t;
	int fd = open(path, O_RDONLY | O_NONBLOCK | O_NOCTTY);

	if (fd < 0) {
		printf("nvp-load: control %s: %s\n", path, strerror(errno));
		return -1;
	}
	if (tcgetattr(fd, &t) == 0) {
		cfmakeraw(&t);
		tcsetattr(fd, TCSANOW, &t);
	}
	return fd;
}

/* True once the control channel said "stop". */
static int stop_requested(int fd)
{
	static char line[64];
	static size_t n;
	char c;

	if (fd < 0)
		return 0;
	while (read(fd, &c, 1) == 1) {
		if (c == '\n' || c == '\r') {
			line[n] = 0;
			n = 0;
			if (!strcmp(line, "stop"))
				return 1;
		} else if (n + 1 < sizeof(line)) {
			line[n++] = c;
		}
	}
	return 0;
}

int main(int argc, char **argv)
{
	const char *dev, *ctl = NULL;
	uint64_t region_mib = 16, nblocks, written = 0;
	double limit = 0, t0, last;
	uint64_t *seqs;
	uint8_t *buf;
	int fd, cfd = -1, opt;

	bs = 4096;
	nring = 256;
	while ((opt = getopt(argc, argv, "r:b:k:c:t:")) != -1) {
		switch (opt) {
		case 'k': nring = strtoul(optarg, NULL, 0); break;
		case 'r': region_mib = strtoull(optarg, NULL, 0); break;
		case 'b': bs = strtoul(optarg, NULL, 0); break;
		case 'c': ctl = optarg; break;
		case 't': limit = strtod(optarg, NULL); break;
		default:
			fprintf(stderr, "usage: %s DEVICE [-r MiB] [-b BYTES] [-c TTY] [-t SECONDS]\n", argv[0]);
			return 2;
		}
	}
	if (optind >= argc || bs < 512 || bs % 512 || !nring) {
		fprintf(stderr, "usage: %s DEVICE [-r MiB] [-b BYTES] [-c TTY] [-t SECONDS]\n", argv[0]);
		return 2;
	}
	dev = argv[optind];
	crc_init();

	fd = open(dev, O_RDWR | O_DIRECT);
	if (fd < 0) {
		printf("nvp-load: open %s: %s\n", dev, strerror(errno));
		return 1;
	}
	uint64_t devsize = 0;

	if (ioctl(fd, BLKGETSIZE64, &devsize) == 0 && devsize < region_mib << 20)
		region_mib = devsize >> 20;
	nblocks = (region_mib << 20) / bs;
	if (!nblocks) {
		printf("nvp-load: %s is too small\n", dev);
		return 1;
	}
	seqs = calloc(nblocks, sizeof(*seqs));
	pend = calloc(nring, sizeof(*pend));
	if (!seqs || !pend || posix_memalign((void **)&buf, 4096, bs) ||
	    posix_memalign((void **)&ring, 4096, nring * bs)) {
		printf("nvp-load: out of memory\n");
		return 1;
	}
	if (ctl)
		cfd = open_control(ctl);

	t0 = last = now();
	run_id = (uint64_t)(t0 * 1e9) ^ (uint64_t)getpid() << 32;
	rng_state = run_id | 1;
	printf("nvp-load: running on %s, %llu blocks of %zu bytes (%llu MiB), run %016llx\n",
	       dev, (unsigned long long)nblocks, bs, (unsigned long long)region_mib,
	       (unsigned long long)run_id);
	fflush(stdout);

	uint64_t seq = 0;

	for (;;) {
		double t = now();

		if (t - last >= 1.0) {
			status("status", t - t0, written);
			last = t;
		}
		if (stop_requested(cfd) || (limit > 0 && t - t0 >= limit) || errors > 16)
			break;

		uint64_t lba = rng() % nblocks;

		fill(buf, lba, ++seq);
		if (do_io(fd, buf, lba, 1) == 0) {
			if (!seqs[lba])
				written++;
			seqs[lba] = seq;
		}
		/* Read back the block just written, and one written earlier. */
		if (seqs[lba])
			read_deferred(fd, lba, seqs[lba]);
		lba = rng() % nblocks;
		if (seqs[lba])
			read_deferred(fd, lba, seqs[lba]);
	}

	/* The reads still in the ring, then a final pass: every block ever
	 * acknowledged reads back as last written. */
	for (size_t i = 0; i < nring; i++)
		check_slot(i);
	printf("nvp-load: final verification of %llu blocks\n", (unsigned long long)written);
	fflush(stdout);
	for (uint64_t lba = 0; lba < nblocks; lba++) {
		if (!seqs[lba] || do_io(fd, buf, lba, 0))
			continue;
		if (check(buf, lba, seqs[lba]))
			mismatches++;
		else
			verified++;
	}
	status("DONE", now() - t0, written);
	close(fd);
	return errors || mismatches ? 1 : 0;
}
