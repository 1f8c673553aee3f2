// SPDX-License-Identifier: GPL-2.0
/*
 * lm_test: exercise the project's TP4159 (Host Managed Live Migration)
 * model in QEMU's emulated NVMe from inside the test VM.
 *
 * Runs as root in the L1 guest. Uses NVMe admin passthrough on the PF
 * (NVME_IOCTL_ADMIN_CMD) for the live-migration commands and on VF1 for
 * the "a VF may not migrate its siblings" checks. VF1 must be bound to the
 * nvme driver (it has an admin queue and I/O queues); VF2 must be online
 * but unbound: the test enables it by hand through its BAR0 (no DMA is
 * ever started on it) to use it as a Set Controller State destination.
 *
 * usage: lm_test PF_BDF VF1_BDF VF2_BDF [GROUP...]
 *   GROUP: identify vf fields suspend doorbell setstate reset cdq track cross
 * Output: TAP ("1..N", "ok N - name", "not ok N - name").
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <glob.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <linux/nvme_ioctl.h>

/* opcodes, status codes (with DNR, as the ioctl returns them) */
#define OPC_IDENTIFY	0x06
#define OPC_MIG_SEND	0x41
#define OPC_MIG_RECV	0x42

#define DNR		0x4000
#define SC_INVALID_OPC	(DNR | 0x001)
#define SC_INVALID_FIELD (DNR | 0x002)
#define SC_SEQ_ERROR	(DNR | 0x00c)
#define SC_INVALID_CTRL	(DNR | 0x11f)
#define SC_NOT_SUSP	(DNR | 0x13a)

#define HDR_LEN		48

static const uint8_t vs_uuid[16] = {
	0x21, 0xb9, 0xd2, 0x7c, 0xda, 0x25, 0x45, 0x45,
	0xbf, 0x2a, 0x6f, 0xad, 0x28, 0x25, 0x56, 0x5e,
};

static int test_no, failed;
static const char *pf_bdf, *vf1_bdf, *vf2_bdf;
static int pf_fd = -1, vf1_fd = -1;
static uint16_t vf1_id = 1, vf2_id = 2;

static void ok(int cond, const char *fmt, ...)
{
	va_list ap;

	test_no++;
	if (!cond)
		failed++;
	printf("%sok %d - ", cond ? "" : "not ", test_no);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
	fflush(stdout);
}

static void diag(const char *fmt, ...)
{
	va_list ap;

	printf("# ");
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
	fflush(stdout);
}

struct cmd {
	uint8_t opc;
	uint32_t cdw10, cdw11, cdw12, cdw13, cdw14, cdw15;
	void *buf;
	uint32_t len;
	uint32_t result;
};

/* Returns the NVMe status (with DNR), 0 on success, -errno on failure. */
static int admin(int fd, struct cmd *c)
{
	struct nvme_admin_cmd a = {
		.opcode = c->opc,
		.addr = (uintptr_t)c->buf,
		.data_len = c->len,
		.cdw10 = c->cdw10, .cdw11 = c->cdw11, .cdw12 = c->cdw12,
		.cdw13 = c->cdw13, .cdw14 = c->cdw14, .cdw15 = c->cdw15,
		.timeout_ms = 20000,
	};
	int rc = ioctl(fd, NVME_IOCTL_ADMIN_CMD, &a);

	c->result = a.result;
	return rc < 0 ? -errno : rc;
}

static int identify(int fd, uint8_t cns, void *buf)
{
	struct cmd c = { .opc = OPC_IDENTIFY, .cdw10 = cns, .buf = buf,
			 .len = 4096 };
	return admin(fd, &c);
}

static int suspend(uint16_t cntlid, uint8_t stype)
{
	struct cmd c = { .opc = OPC_MIG_SEND, .cdw10 = 0,
			 .cdw11 = (uint32_t)stype << 16 | cntlid };
	return admin(pf_fd, &c);
}

static int resume(uint16_t cntlid)
{
	struct cmd c = { .opc = OPC_MIG_SEND, .cdw10 = 1, .cdw11 = cntlid };
	return admin(pf_fd, &c);
}

/* Get Controller State window: NUMD is 0's based. */
static int get_state(int fd, uint16_t cntlid, uint8_t csvi, uint8_t csuuidi,
		     uint64_t off, void *buf, uint32_t len, uint32_t *dw0)
{
	struct cmd c = {
		.opc = OPC_MIG_RECV,
		.cdw10 = (uint32_t)csvi << 16,
		.cdw11 = (uint32_t)csuuidi << 16 | cntlid,
		.cdw12 = (uint32_t)off, .cdw13 = (uint32_t)(off >> 32),
		.cdw15 = len / 4 - 1, .buf = buf, .len = len,
	};
	int rc = admin(fd, &c);

	if (dw0)
		*dw0 = c.result;
	return rc;
}

/* Set Controller State: NUMD is not 0's based. */
static int set_state(uint16_t cntlid, uint8_t seqind, uint8_t csvi,
		     uint8_t csuuidi, uint64_t off, void *buf, uint32_t len)
{
	struct cmd c = {
		.opc = OPC_MIG_SEND,
		.cdw10 = (uint32_t)seqind << 16 | 2,
		.cdw11 = (uint32_t)csuuidi << 24 | (uint32_t)csvi << 16 | cntlid,
		.cdw12 = (uint32_t)off, .cdw13 = (uint32_t)(off >> 32),
		.cdw15 = len / 4, .buf = buf, .len = len,
	};
	return admin(pf_fd, &c);
}

static uint16_t le16(const uint8_t *p) { return p[0] | p[1] << 8; }
static uint32_t le32(const uint8_t *p) { return le16(p) | (uint32_t)le16(p + 2) << 16; }
static uint64_t le64(const uint8_t *p) { return le32(p) | (uint64_t)le32(p + 4) << 32; }

/* Read a whole controller state: header first, then the rest. */
static uint8_t *read_state(uint16_t cntlid, uint8_t csvi, uint8_t csuuidi,
			   size_t *total, uint32_t *dw0)
{
	uint8_t hdr[HDR_LEN];
	uint8_t *buf;
	size_t len;

	if (get_state(pf_fd, cntlid, csvi, csuuidi, 0, hdr, sizeof(hdr), dw0))
		return NULL;
	len = HDR_LEN + 4 * (le64(hdr + 16) + le64(hdr + 32));
	buf = calloc(1, (len + 4095) & ~4095UL);
	if (!buf || get_state(pf_fd, cntlid, csvi, csuuidi, 0, buf, len, dw0)) {
		free(buf);
		return NULL;
	}
	*total = len;
	return buf;
}

static char *nvme_dev_of(const char *bdf)
{
	static char path[256];
	char pat[256];
	glob_t g;

	snprintf(pat, sizeof(pat), "/sys/bus/pci/devices/%s/nvme/nvme*", bdf);
	if (glob(pat, 0, NULL, &g) || !g.gl_pathc)
		return NULL;
	snprintf(path, sizeof(path), "/dev/%s", strrchr(g.gl_pathv[0], '/') + 1);
	globfree(&g);
	return path;
}

/*
 * Has the kernel's nvme driver reset the controller of @bdf, and waits up to
 * 20 s for it to be live again; @state gets its last state (no newline).
 */
static void reset_ctrl(const char *bdf, char *state, size_t len)
{
	const char *node = nvme_dev_of(bdf);
	const char *dev;
	char path[256];
	FILE *f;

	state[0] = 0;
	if (!node)
		return;
	dev = strrchr(node, '/') + 1;
	snprintf(path, sizeof(path), "/sys/class/nvme/%s/reset_controller", dev);
	f = fopen(path, "w");
	if (f) {
		fputs("1\n", f);
		fclose(f);
	}
	snprintf(path, sizeof(path), "/sys/class/nvme/%s/state", dev);
	for (int i = 0; i < 200; i++) {
		usleep(100000);
		f = fopen(path, "r");
		if (f) {
			if (!fgets(state, (int)len, f))
				state[0] = 0;
			fclose(f);
		}
		if (!strncmp(state, "live", 4))
			break;
	}
	state[strcspn(state, "\n")] = 0;
}


/* --- VF2 by hand: BAR0 registers, no DMA ------------------------------- */

static volatile uint8_t *vf2_bar;

static int vf2_map(void)
{
	char path[256];
	int fd;

	/*
	 * QEMU's VFs honour their own Memory Space and Bus Master Enable bits
	 * (no driver sets them on the unbound VF2): set both
	 */
	snprintf(path, sizeof(path), "/sys/bus/pci/devices/%s/config", vf2_bdf);
	fd = open(path, O_RDWR);
	if (fd >= 0) {
		uint16_t cmd = 0;

		if (pread(fd, &cmd, 2, 4) == 2) {
			cmd |= 0x6;
			if (pwrite(fd, &cmd, 2, 4) != 2)
				diag("could not enable VF2 memory decode");
		}
		close(fd);
	}
	snprintf(path, sizeof(path), "/sys/bus/pci/devices/%s/resource0", vf2_bdf);
	fd = open(path, O_RDWR | O_SYNC);
	if (fd < 0)
		return -1;
	vf2_bar = mmap(NULL, 0x2000, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	close(fd);
	return vf2_bar == MAP_FAILED ? -1 : 0;
}

static uint32_t rd32(unsigned int off) { return *(volatile uint32_t *)(vf2_bar + off); }
static void wr32(unsigned int off, uint32_t v) { *(volatile uint32_t *)(vf2_bar + off) = v; }
static void wr64(unsigned int off, uint64_t v)
{
	wr32(off, (uint32_t)v);
	wr32(off + 4, (uint32_t)(v >> 32));
}

static int wait_rdy(int want)
{
	for (int i = 0; i < 2000; i++) {
		if ((int)(rd32(0x1c) & 1) == want)
			return 0;
		usleep(1000);
	}
	return -1;
}

/*
 * Enable VF2 with a 32-entry admin queue at made-up addresses: the
 * controller never touches them as long as no doorbell is rung.
 */
static int vf2_enable(void)
{
	wr32(0x14, 0);
	if (wait_rdy(0))
		return -1;
	wr32(0x24, 31 << 16 | 31);		/* AQA */
	wr64(0x28, 0x7f000000);			/* ASQ */
	wr64(0x30, 0x7f001000);			/* ACQ */
	wr32(0x14, 6 << 16 | 4 << 20 | 1);	/* IOSQES=6 IOCQES=4 EN */
	return wait_rdy(1);
}

static void vf2_disable(void)
{
	wr32(0x14, 0);
	wait_rdy(0);
}

static uint64_t phys_of(void *p)
{
	uint64_t e = 0;
	int fd = open("/proc/self/pagemap", O_RDONLY);

	if (fd < 0)
		return 0;
	if (pread(fd, &e, 8, ((uintptr_t)p / 4096) * 8) != 8)
		e = 0;
	close(fd);
	if (!(e >> 63))
		return 0;
	return (e & ((1ULL << 55) - 1)) * 4096;
}

static uint8_t *dma_pages(int n)
{
	void *p = mmap(NULL, 4096 * n, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS | MAP_LOCKED | MAP_POPULATE, -1, 0);

	if (p == MAP_FAILED)
		return NULL;
	memset(p, 0, 4096 * n);
	return p;
}

/* --- tests --------------------------------------------------------------- */

static void t_identify(void)
{
	uint8_t id[4096];
	int rc;

	rc = identify(pf_fd, 1, id);
	ok(!rc && (le16(id + 256) & (1 << 11)), "PF Identify Controller: OACS.HMLMS set (oacs=%#x)", le16(id + 256));
	ok(!rc && !(le16(id + 256) & (1 << 8)), "PF: Doorbell Buffer Config not offered with HMLMS");

	rc = identify(vf1_fd, 1, id);
	ok(!rc && !(le16(id + 256) & (1 << 11)), "VF Identify Controller: OACS.HMLMS clear (oacs=%#x)", le16(id + 256));

	memset(id, 0xff, sizeof(id));
	rc = identify(pf_fd, 0x20, id);
	ok(!rc && id[0] == 1 && le16(id + 2) == 0, "CNS 20h: NV=1, VERS[0]=0 (rc=%#x nv=%u)", rc, id[0]);
	ok(!rc && id[1] == 1 && !memcmp(id + 4, vs_uuid, 16), "CNS 20h: NUUID=1, vendor state UUID");

	rc = identify(vf1_fd, 0x20, id);
	ok(rc == SC_INVALID_FIELD, "CNS 20h on a VF: Invalid Field (rc=%#x)", rc);
}

static void t_vf_rejects(void)
{
	struct cmd c = { .opc = OPC_MIG_SEND, .cdw10 = 0, .cdw11 = 1 << 16 | vf2_id };
	uint8_t buf[64];
	int rc;

	rc = admin(vf1_fd, &c);
	ok(rc == SC_INVALID_OPC, "VF: Migration Send (Suspend sibling) is Invalid Opcode+DNR (rc=%#x)", rc);
	rc = get_state(vf1_fd, vf2_id, 1, 0, 0, buf, sizeof(buf), NULL);
	ok(rc == SC_INVALID_OPC, "VF: Migration Receive is Invalid Opcode+DNR (rc=%#x)", rc);
}

static void t_bad_fields(void)
{
	struct cmd c = { .opc = OPC_MIG_SEND };
	uint8_t buf[64];
	int rc;

	c.cdw10 = 3; c.cdw11 = vf1_id;
	rc = admin(pf_fd, &c);
	ok(rc == SC_INVALID_FIELD, "Migration Send reserved SEL 3: Invalid Field (rc=%#x)", rc);
	c.cdw10 = 0xff; rc = admin(pf_fd, &c);
	ok(rc == SC_INVALID_FIELD, "Migration Send reserved SEL ffh: Invalid Field (rc=%#x)", rc);
	c.cdw10 = 0x100; c.cdw11 = 1 << 16 | vf1_id; rc = admin(pf_fd, &c);
	ok(rc == SC_INVALID_FIELD, "Migration Send reserved CDW10[15:8]: Invalid Field (rc=%#x)", rc);
	c.cdw10 = 0; c.cdw11 = 1 << 16 | vf1_id; c.cdw14 = 1; rc = admin(pf_fd, &c);
	ok(rc == SC_INVALID_FIELD, "Migration Send UIDX != 0: Invalid Field (rc=%#x)", rc);

	rc = suspend(vf1_id, 2);
	ok(rc == SC_INVALID_FIELD, "Suspend reserved STYPE 2: Invalid Field (rc=%#x)", rc);
	rc = suspend(0, 1);
	ok(rc == SC_INVALID_CTRL, "Suspend CNTLID 0 (the PF itself): Invalid Controller Identifier (rc=%#x)", rc);
	rc = suspend(0x99, 1);
	ok(rc == SC_INVALID_CTRL, "Suspend unknown CNTLID 99h: Invalid Controller Identifier (rc=%#x)", rc);
	rc = suspend(4, 1);
	ok(rc == SC_INVALID_CTRL, "Suspend secondary 4 whose VF is not enabled: Invalid Controller Identifier (rc=%#x)", rc);
	rc = resume(0x99);
	ok(rc == SC_INVALID_CTRL, "Resume unknown CNTLID: Invalid Controller Identifier (rc=%#x)", rc);
	rc = resume(vf1_id);
	ok(rc == SC_NOT_SUSP, "Resume when not suspended: Controller Not Suspended (rc=%#x)", rc);

	rc = get_state(pf_fd, vf1_id, 1, 0, 0, buf, sizeof(buf), NULL);
	ok(!rc, "Get State on a running controller succeeds (rc=%#x)", rc);
	c = (struct cmd){ .opc = OPC_MIG_RECV, .cdw10 = 1 | 1 << 16, .cdw11 = vf1_id,
			  .cdw15 = 15, .buf = buf, .len = 64 };
	rc = admin(pf_fd, &c);
	ok(rc == SC_INVALID_FIELD, "Migration Receive reserved SEL 1: Invalid Field (rc=%#x)", rc);
	rc = get_state(pf_fd, vf1_id, 2, 0, 0, buf, sizeof(buf), NULL);
	ok(rc == SC_INVALID_FIELD, "Get State CSVI=2 (unsupported version index): Invalid Field (rc=%#x)", rc);
	rc = get_state(pf_fd, vf1_id, 1, 2, 0, buf, sizeof(buf), NULL);
	ok(rc == SC_INVALID_FIELD, "Get State CSUUIDI=2: Invalid Field (rc=%#x)", rc);
	rc = get_state(pf_fd, vf1_id, 1, 0, 2, buf, 16, NULL);
	ok(rc == SC_INVALID_FIELD, "Get State misaligned Offset: Invalid Field (rc=%#x)", rc);
	rc = get_state(pf_fd, vf1_id, 1, 0, 1 << 20, buf, 16, NULL);
	ok(rc == SC_INVALID_FIELD, "Get State Offset beyond the state: Invalid Field (rc=%#x)", rc);
	rc = get_state(pf_fd, vf1_id, 1, 0, 1ULL << 40, buf, 16, NULL);
	ok(rc == SC_INVALID_FIELD, "Get State 64-bit Offset beyond the state: Invalid Field (rc=%#x)", rc);
	rc = get_state(pf_fd, 0, 1, 0, 0, buf, 16, NULL);
	ok(rc == SC_INVALID_CTRL, "Get State CNTLID 0: Invalid Controller Identifier (rc=%#x)", rc);
	c = (struct cmd){ .opc = OPC_MIG_RECV, .cdw10 = 1 << 16, .cdw11 = vf1_id,
			  .cdw15 = 0x3ffff, .buf = buf, .len = 64 };
	rc = admin(pf_fd, &c);
	ok(rc == SC_INVALID_FIELD, "Get State NUMD of 1 MiB (above MDTS): Invalid Field (rc=%#x)", rc);
	c = (struct cmd){ .opc = OPC_MIG_SEND, .cdw10 = 0, .cdw11 = 1 << 24 | 1 << 16 | vf1_id };
	rc = admin(pf_fd, &c);
	ok(rc == SC_INVALID_FIELD, "Suspend with reserved CDW11[30:24] set: Invalid Field (rc=%#x)", rc);
	c = (struct cmd){ .opc = OPC_MIG_SEND, .cdw10 = 1, .cdw11 = 1 << 16 | vf1_id };
	rc = admin(pf_fd, &c);
	ok(rc == SC_INVALID_FIELD, "Resume with reserved CDW11[31:16] set: Invalid Field (rc=%#x)", rc);

	rc = set_state(vf1_id, 3, 1, 0, 0, buf, 64);
	ok(rc == SC_NOT_SUSP, "Set State on a running controller: Controller Not Suspended (rc=%#x)", rc);
}

static uint8_t *src_state;
static size_t src_len;

static void t_suspend_get(void)
{
	uint32_t dw0 = 0xdead;
	uint8_t hdr[HDR_LEN], *win, *s;
	size_t len;
	int rc, nsq, ncq, good;

	rc = suspend(vf1_id, 0);
	ok(!rc, "Suspend Notification (STYPE 0) succeeds (rc=%#x)", rc);
	rc = get_state(pf_fd, vf1_id, 1, 0, 0, hdr, sizeof(hdr), &dw0);
	ok(!rc && !(dw0 & 1) && !(hdr[2] & 1), "after a notification the controller is not suspended (CSUP=%u)", dw0 & 1);

	rc = suspend(vf1_id, 1);
	ok(!rc, "Suspend VF1 (rc=%#x)", rc);
	rc = suspend(vf1_id, 1);
	ok(!rc, "Suspend an already suspended controller succeeds (rc=%#x)", rc);

	rc = get_state(pf_fd, vf1_id, 1, 0, 0, hdr, sizeof(hdr), &dw0);
	ok(!rc && (dw0 & 1) && (hdr[2] & 1), "Get State: CQE DW0.CSUP=1 and CSATTR.suspended (dw0=%#x)", dw0);
	ok(!rc && le16(hdr) == 0 && !le64(hdr + 24) && !le64(hdr + 40) && !le64(hdr + 32),
	   "header: VER 0, VSS 0 without CSUUIDI, 128-bit sizes");

	s = read_state(vf1_id, 1, 1, &len, &dw0);
	ok(s != NULL, "Get State with CSVI=1, CSUUIDI=1 (header, then the whole state)");
	if (!s)
		return;
	nsq = le16(s + HDR_LEN + 2);
	ncq = le16(s + HDR_LEN + 4);
	diag("VF1 state: %zu bytes, NVMECSS=%llu VSS=%llu NIOSQ=%d NIOCQ=%d", len,
	     (unsigned long long)le64(s + 16), (unsigned long long)le64(s + 32), nsq, ncq);
	ok(nsq >= 1 && ncq >= 1 && le64(s + 16) * 4 == (uint64_t)(8 + 24 * (nsq + ncq)) &&
	   le16(s + HDR_LEN) == 0, "NVMe state v0: NVMECSS = 8 + 24*(NIOSQ+NIOCQ) bytes, at least 1 SQ and 1 CQ");

	good = 1;
	for (int i = 0; i < nsq; i++) {
		uint8_t *e = s + HDR_LEN + 8 + 24 * i;

		diag("SQ qid=%u cqid=%u qsize=%u attr=%#x head=%u tail=%u prp1=%#llx", le16(e + 10),
		     le16(e + 12), le16(e + 8), le16(e + 14), le16(e + 16), le16(e + 18),
		     (unsigned long long)le64(e));
		good &= le16(e + 10) >= 1 && (le16(e + 14) & 1) && le16(e + 16) == le16(e + 18);
	}
	for (int i = 0; i < ncq; i++) {
		uint8_t *e = s + HDR_LEN + 8 + 24 * (nsq + i);

		diag("CQ qid=%u qsize=%u head=%u tail=%u attr=%#x prp1=%#llx", le16(e + 10), le16(e + 8),
		     le16(e + 12), le16(e + 14), le32(e + 16), (unsigned long long)le64(e));
		good &= le16(e + 10) >= 1 && (le32(e + 16) & 3) == 3;
	}
	ok(good, "queue entries: QID >= 1, PC=1, IEN=1, suspended idle SQs have head == tail");

	{
		uint8_t *v = s + HDR_LEN + 4 * le64(s + 16);

		ok(le64(s + 32) >= 32 && !memcmp(v, "QEMUNVLM", 8) && le16(v + 8) == 1 &&
		   (le32(v + 16) & 1), "vendor state: magic, version 1, CC.EN=1 (cc=%#x)", le32(v + 16));
	}

	/* the same bytes through 16-byte windows */
	win = calloc(1, len + 16);
	good = 1;
	for (size_t off = 0; off < len; off += 16) {
		rc = get_state(pf_fd, vf1_id, 1, 1, off, win + off, 16, NULL);
		good &= !rc;
	}
	{
		/* the vendor state's timestamp (bytes 80..87) keeps running */
		size_t ts = HDR_LEN + 4 * le64(s + 16) + 80;

		memcpy(win + ts, s + ts, 8);
	}
	ok(good && !memcmp(win, s, len), "Get State in 16-byte Offset/NUMD windows matches a single read");
	memset(win, 0xaa, 64);
	rc = get_state(pf_fd, vf1_id, 1, 1, len - 4, win, 64, NULL);
	good = !rc && !memcmp(win, s + len - 4, 4);
	for (int i = 4; i < 64; i++)
		good &= win[i] == 0;
	ok(good, "a window past the end returns the tail and zero fill (rc=%#x)", rc);
	rc = get_state(pf_fd, vf1_id, 0, 0, 0, win, 64, NULL);
	ok(!rc && !le64(win + 16) && !le64(win + 32), "Get State CSVI=0 CSUUIDI=0: header only (rc=%#x)", rc);
	free(win);

	src_state = s;
	src_len = len;
}

static int run_dd(const char *dev)
{
	char cmd[256];

	snprintf(cmd, sizeof(cmd), "dd if=%s of=/dev/null bs=4096 count=1 skip=7 iflag=direct status=none", dev);
	return system(cmd);
}

static void t_latched_doorbell(void)
{
	char ns[64];
	pid_t pid;
	int st, done = 0, rc;
	struct timespec t0, t1;

	snprintf(ns, sizeof(ns), "%sn1", nvme_dev_of(vf1_bdf));
	if (access(ns, R_OK)) {
		ok(0, "latched doorbell: %s missing", ns);
		return;
	}
	pid = fork();
	if (!pid)
		_exit(run_dd(ns) ? 1 : 0);
	sleep(2);
	if (waitpid(pid, &st, WNOHANG) == pid)
		done = 1;
	ok(!done, "a read submitted to a suspended VF does not complete");

	clock_gettime(CLOCK_MONOTONIC, &t0);
	rc = resume(vf1_id);
	ok(!rc, "Resume VF1 (rc=%#x)", rc);
	if (!done) {
		for (int i = 0; i < 100 && !done; i++) {
			if (waitpid(pid, &st, WNOHANG) == pid)
				done = 1;
			else
				usleep(100000);
		}
		clock_gettime(CLOCK_MONOTONIC, &t1);
		ok(done && WIFEXITED(st) && !WEXITSTATUS(st),
		   "after Resume the latched SQE is fetched and completes (%.2f s)",
		   t1.tv_sec - t0.tv_sec + (t1.tv_nsec - t0.tv_nsec) / 1e9);
	} else {
		ok(0, "after Resume the latched SQE is fetched and completes");
	}
	rc = resume(vf1_id);
	ok(rc == SC_NOT_SUSP, "Resume twice: Controller Not Suspended (rc=%#x)", rc);
	ok(run_dd(ns) == 0, "VF1 I/O works after Resume");
}

static void t_set_state(void)
{
	uint8_t *s = src_state, *d, *bad;
	size_t nlen, len;
	uint8_t nbuf[4096];
	uint32_t dw0;
	int rc;

	if (!s) {
		ok(0, "Set State tests need the source state");
		return;
	}
	nlen = 4 * le64(s + 16);

	/* NVMe-state-only blob: header + NVMe state */
	memcpy(nbuf, s, HDR_LEN + nlen);
	memset(nbuf + 32, 0, 16);			/* VSS = 0 */

	rc = suspend(vf1_id, 1);
	ok(!rc, "Suspend VF1 again (rc=%#x)", rc);
	rc = set_state(vf1_id, 3, 1, 0, 0, nbuf, HDR_LEN + nlen);
	ok(rc == SC_SEQ_ERROR, "Set State on a target that has I/O queues: Command Sequence Error (rc=%#x)", rc);
	rc = resume(vf1_id);
	ok(!rc, "Resume VF1 (rc=%#x)", rc);

	ok(vf2_map() == 0, "map VF2 BAR0 (%s)", vf2_bdf);
	if (!vf2_bar)
		return;
	ok(vf2_enable() == 0, "enable VF2 by hand (CSTS.RDY=1, no I/O queues)");

	rc = set_state(vf2_id, 3, 1, 0, 0, nbuf, HDR_LEN + nlen);
	ok(rc == SC_NOT_SUSP, "Set State on a running destination: Controller Not Suspended (rc=%#x)", rc);
	rc = suspend(vf2_id, 1);
	ok(!rc, "Suspend VF2 (rc=%#x)", rc);

	rc = set_state(vf2_id, 3, 0, 0, 0, nbuf, HDR_LEN + nlen);
	ok(rc == SC_INVALID_FIELD, "Set State CSVI=0 CSUUIDI=0: Invalid Field (rc=%#x)", rc);
	rc = set_state(vf2_id, 3, 2, 0, 0, nbuf, HDR_LEN + nlen);
	ok(rc == SC_INVALID_FIELD, "Set State CSVI=2: Invalid Field (rc=%#x)", rc);
	rc = set_state(vf2_id, 3, 1, 0, 0, nbuf, 0);
	ok(rc == SC_INVALID_FIELD, "Set State NUMD=0: Invalid Field (rc=%#x)", rc);
	{
		struct cmd c = { .opc = OPC_MIG_SEND, .cdw10 = 3 << 16 | 2,
				 .cdw11 = 1 << 16 | vf2_id, .cdw15 = 0x40000,
				 .buf = nbuf, .len = HDR_LEN + nlen };
		rc = admin(pf_fd, &c);
		ok(rc == SC_INVALID_FIELD, "Set State NUMD of 1 MiB (above MDTS): Invalid Field (rc=%#x)", rc);
	}
	{
		struct cmd c = { .opc = OPC_MIG_SEND, .cdw10 = 7 << 16 | 2,
				 .cdw11 = 1 << 16 | vf2_id, .cdw15 = (HDR_LEN + nlen) / 4,
				 .buf = nbuf, .len = HDR_LEN + nlen };
		rc = admin(pf_fd, &c);
		ok(rc == SC_INVALID_FIELD, "Set State reserved MOS bit 2: Invalid Field (rc=%#x)", rc);
	}
	rc = set_state(vf2_id, 0, 1, 0, 16, nbuf, 16);
	ok(rc == SC_SEQ_ERROR, "Set State SEQIND=middle without a first: Command Sequence Error (rc=%#x)", rc);
	rc = set_state(vf2_id, 2, 1, 0, 16, nbuf, 16);
	ok(rc == SC_SEQ_ERROR, "Set State SEQIND=last without a first: Command Sequence Error (rc=%#x)", rc);
	rc = set_state(vf2_id, 1, 1, 0, 8, nbuf, 16);
	ok(rc == SC_INVALID_FIELD, "Set State SEQIND=first with Offset != 0: Invalid Field (rc=%#x)", rc);
	rc = set_state(vf2_id, 3, 1, 1, 0, nbuf, HDR_LEN + nlen);
	ok(rc == SC_INVALID_FIELD, "Set State CSUUIDI=1 but VSS=0 in the data: Invalid Field (rc=%#x)", rc);

	bad = malloc(HDR_LEN + nlen);
	memcpy(bad, nbuf, HDR_LEN + nlen);
	bad[0] = 1;
	rc = set_state(vf2_id, 3, 1, 0, 0, bad, HDR_LEN + nlen);
	ok(rc == SC_INVALID_FIELD, "Set State header VER=1: Invalid Field (rc=%#x)", rc);
	memcpy(bad, nbuf, HDR_LEN + nlen);
	bad[16] += 1;
	rc = set_state(vf2_id, 3, 1, 0, 0, bad, HDR_LEN + nlen);
	ok(rc == SC_INVALID_FIELD, "Set State NVMECSS inconsistent with the length: Invalid Field (rc=%#x)", rc);
	memcpy(bad, nbuf, HDR_LEN + nlen);
	bad[HDR_LEN + 8 + 12] = 9;			/* SQ 1 -> CQID 9 */
	rc = set_state(vf2_id, 3, 1, 0, 0, bad, HDR_LEN + nlen);
	ok(rc == SC_INVALID_FIELD, "Set State SQ bound to a CQ not in the state: Invalid Field (rc=%#x)", rc);
	memcpy(bad, nbuf, HDR_LEN + nlen);
	bad[HDR_LEN + 8 + 14] &= ~1;			/* SQ PC=0 */
	{
		/* PRP1 = a PRP list of misaligned entries (read from VF2's memory) */
		uint8_t *l = dma_pages(1);
		uint64_t a = l ? phys_of(l) : 0, v = 0x1008;

		for (int i = 0; l && i < 512; i++)
			memcpy(l + 8 * i, &v, 8);
		memcpy(bad + HDR_LEN + 8, &a, 8);
		rc = set_state(vf2_id, 3, 1, 0, 0, bad, HDR_LEN + nlen);
		/* without an identity domain the list is not at that address for VF2 */
		if (!getenv("LM_VF_IDENTITY") || !atoi(getenv("LM_VF_IDENTITY")))
			ok(rc == (DNR | 0x13) || rc == 0x4, "Set State SQ with PC=0, PRP list not usable: refused (rc=%#x)", rc);
		else
			ok(rc == (DNR | 0x13), "Set State SQ with PC=0 whose PRP list has misaligned entries: Invalid PRP Offset (rc=%#x)", rc);
		if (l)
			munmap(l, 4096);
	}
	memcpy(bad, nbuf, HDR_LEN + nlen);
	bad[HDR_LEN + 8 + 24 * le16(nbuf + HDR_LEN + 2) + 18] = 0x7f;	/* CQ IV = 127 */
	rc = set_state(vf2_id, 3, 1, 0, 0, bad, HDR_LEN + nlen);
	ok(rc == SC_INVALID_FIELD, "Set State CQ interrupt vector beyond the VF's: Invalid Field (rc=%#x)", rc);
	memcpy(bad, nbuf, HDR_LEN + nlen);
	bad[HDR_LEN + 8 + 8] = 0xff; bad[HDR_LEN + 8 + 9] = 0xff;	/* SQ QSIZE 65535 */
	rc = set_state(vf2_id, 3, 1, 0, 0, bad, HDR_LEN + nlen);
	ok(rc == SC_INVALID_FIELD, "Set State SQ size above MQES: Invalid Field (rc=%#x)", rc);
	memcpy(bad, nbuf, HDR_LEN + nlen);
	bad[HDR_LEN + 8] |= 0x8;			/* SQ PRP1 misaligned */
	rc = set_state(vf2_id, 3, 1, 0, 0, bad, HDR_LEN + nlen);
	ok(rc == SC_INVALID_FIELD, "Set State SQ PRP1 not page aligned: Invalid Field (rc=%#x)", rc);
	free(bad);

	d = read_state(vf2_id, 1, 0, &len, NULL);
	ok(d && le16(d + HDR_LEN + 2) == 0 && le16(d + HDR_LEN + 4) == 0,
	   "rejected Set State commands left VF2 without I/O queues");
	free(d);

	rc = set_state(vf2_id, 3, 1, 0, 0, nbuf, HDR_LEN + nlen);
	ok(!rc, "Set State SEQIND=entire (NVMe state v0) onto VF2 (rc=%#x)", rc);
	d = read_state(vf2_id, 1, 0, &len, &dw0);
	ok(d && len == HDR_LEN + nlen && !memcmp(d + HDR_LEN, s + HDR_LEN, nlen) && (dw0 & 1),
	   "VF2's state now equals VF1's: every SQ/CQ with head, tail, phase, vector, IEN");
	free(d);
	rc = set_state(vf2_id, 3, 1, 0, 0, nbuf, HDR_LEN + nlen);
	ok(rc == SC_SEQ_ERROR, "a second Set State (queues now exist): Command Sequence Error (rc=%#x)", rc);

	/* multi-command sequence onto a fresh VF2 */
	vf2_disable();
	ok(vf2_enable() == 0, "reset and re-enable VF2");
	rc = suspend(vf2_id, 1);
	ok(!rc, "Suspend VF2 (rc=%#x)", rc);
	{
		size_t total = HDR_LEN + nlen, off = 0, chunk = 20;
		int good = 1, n = 0;

		while (off < total) {
			size_t l = total - off < chunk ? total - off : chunk;
			int seq = off == 0 ? 1 : off + l == total ? 2 : 0;

			rc = set_state(vf2_id, seq, 1, 0, off, nbuf + off, l);
			good &= !rc;
			if (n == 1) {
				/* an out-of-order chunk is refused */
				int r2 = set_state(vf2_id, 0, 1, 0, off + 4 + l, nbuf, 4);
				ok(r2 == SC_INVALID_FIELD, "Set State middle chunk at a wrong Offset: Invalid Field (rc=%#x)", r2);
			}
			off += l;
			n++;
		}
		ok(good, "Set State in %d commands (first/middle/last, 20-byte chunks)", n);
	}
	d = read_state(vf2_id, 1, 0, &len, NULL);
	ok(d && len == HDR_LEN + nlen && !memcmp(d + HDR_LEN, s + HDR_LEN, nlen),
	   "multi-command Set State result equals VF1's state");
	free(d);

	/* with the vendor state: admin queue, registers, features */
	vf2_disable();
	ok(vf2_enable() == 0, "reset and re-enable VF2");
	rc = suspend(vf2_id, 1);
	ok(!rc, "Suspend VF2 (rc=%#x)", rc);
	bad = malloc(src_len);
	memcpy(bad, s, src_len);
	memcpy(bad + HDR_LEN + nlen, "QEMUNVLX", 8);
	rc = set_state(vf2_id, 3, 1, 1, 0, bad, src_len);
	ok(rc == SC_INVALID_FIELD, "Set State vendor state with a bad magic: Invalid Field (rc=%#x)", rc);
	memcpy(bad, s, src_len);
	bad[HDR_LEN + nlen + 16] &= ~1;		/* CC.EN = 0 */
	rc = set_state(vf2_id, 3, 1, 1, 0, bad, src_len);
	ok(rc == SC_INVALID_FIELD, "Set State vendor state with CC.EN=0: Invalid Field (rc=%#x)", rc);
	free(bad);
	{
		/* one queued event of type 9: does not fit the 8-bit AER mask */
		size_t v = HDR_LEN + nlen;
		uint8_t *ev = calloc(1, src_len + 4);
		uint64_t vss = le64(s + 32) + 1;

		memcpy(ev, s, src_len);
		memcpy(ev + 32, &vss, 8);
		ev[v + 14] += 1;			/* NAEREVT */
		ev[src_len] = 9;
		rc = set_state(vf2_id, 3, 1, 1, 0, ev, src_len + 4);
		ok(rc == SC_INVALID_FIELD, "Set State vendor state with an event type > 7: Invalid Field (rc=%#x)", rc);
		free(ev);
	}
	rc = set_state(vf2_id, 3, 1, 1, 0, s, src_len);
	ok(!rc, "Set State with NVMe + vendor state onto VF2 (rc=%#x)", rc);
	d = read_state(vf2_id, 1, 1, &len, NULL);
	{
		/* compare all but the timestamp (vendor bytes 80..87) */
		int same = d && len == src_len;

		if (same) {
			size_t v = HDR_LEN + nlen;

			same = !memcmp(d, s, v + 80) && !memcmp(d + v + 88, s + v + 88, len - v - 88);
		}
		ok(same, "VF2's full state (admin queue, CC/AQA/ASQ/ACQ, AERs, features) equals VF1's");
	}
	ok(rd32(0x14) == le32(s + HDR_LEN + nlen + 16) && rd32(0x24) == le32(s + HDR_LEN + nlen + 20),
	   "VF2 BAR0 CC/AQA now read back VF1's values (cc=%#x aqa=%#x)", rd32(0x14), rd32(0x24));
	free(d);

	/* leave VF2 running but idle, then reset it */
	rc = resume(vf2_id);
	ok(!rc, "Resume VF2 (rc=%#x)", rc);
	vf2_disable();
	ok((rd32(0x1c) & 1) == 0, "VF2 reset (CC.EN=0) after the test");
}

static void t_reset_clears(void)
{
	uint32_t dw0 = 0;
	uint8_t hdr[HDR_LEN];
	int rc;

	ok(vf2_enable() == 0, "enable VF2 again");
	rc = suspend(vf2_id, 1);
	ok(!rc, "Suspend VF2 (rc=%#x)", rc);
	vf2_disable();
	rc = get_state(pf_fd, vf2_id, 0, 0, 0, hdr, sizeof(hdr), &dw0);
	ok(!rc && !(dw0 & 1), "a controller reset of the migratable controller ends the suspension");
	rc = resume(vf2_id);
	ok(rc == SC_NOT_SUSP, "Resume after that reset: Controller Not Suspended (rc=%#x)", rc);
}

/*
 * --- Controller Data Queues ----------------------------------------------
 *
 * The passthrough ioctl builds PRP1 from the buffer it maps for the
 * command and unmaps it afterwards, so a queue that the device keeps
 * writing to needs a PF whose IOMMU domain is identity (lm_guest.sh sets
 * that up): bus address = physical address, and the pages stay put
 * because they are locked.
 */
#define OPC_TRACK_SEND	0x3d
#define OPC_TRACK_RECV	0x3e
#define OPC_CDQ		0x45
#define OPC_SET_FEAT	0x09
#define OPC_GET_FEAT	0x0a
#define SC_INVALID_CDQ	(DNR | 0x137)
#define SC_CTRL_SUSP	(DNR | 0x139)

static int pf_identity;

/* Create CDQ: PRP1 = the first page of @buf (queue, or PRP list if !pc) */
static int cdq_create(uint16_t cntlid, int pc, void *buf, uint32_t dwords, uint32_t mos,
		      uint32_t *id)
{
	struct cmd c = { .opc = OPC_CDQ, .cdw10 = mos << 16,
			 .cdw11 = (uint32_t)cntlid << 16 | (pc ? 1 : 0),
			 .cdw12 = dwords, .buf = buf, .len = 4096 };
	int rc = admin(pf_fd, &c);

	if (id)
		*id = c.result;
	return rc;
}

static int cdq_delete(uint32_t id)
{
	struct cmd c = { .opc = OPC_CDQ, .cdw10 = 1, .cdw11 = id };
	return admin(pf_fd, &c);
}

static int track(uint32_t id, uint32_t lact)
{
	struct cmd c = { .opc = OPC_TRACK_SEND, .cdw10 = lact << 16, .cdw11 = id };
	return admin(pf_fd, &c);
}

static int cdq_set_head(uint32_t id, uint32_t hp, int etpt, uint32_t tpt)
{
	struct cmd c = { .opc = OPC_SET_FEAT, .cdw10 = 0x21,
			 .cdw11 = (uint32_t)etpt << 31 | id, .cdw12 = hp, .cdw13 = tpt };
	return admin(pf_fd, &c);
}

struct udmq_e {
	uint32_t nsid, nlb;
	uint64_t slba;
	uint8_t phase, esa, dlba, lbacir;
};

static struct udmq_e entry_at(volatile uint8_t *q, int i)
{
	uint8_t e[32];
	struct udmq_e r;

	for (int k = 0; k < 32; k++)
		e[k] = q[32 * i + k];
	r.nsid = le32(e);
	r.nlb = le32(e + 4);
	r.slba = le64(e + 8);
	r.phase = e[31] & 1;
	r.esa = (e[31] >> 1) & 7;
	r.dlba = (e[31] >> 5) & 1;
	r.lbacir = e[31] >> 6;
	return r;
}

static int vf1_ns_fd = -1;
static void *iobuf;

/*
 * VF1's namespace (path into @ns) opened read-write with O_DIRECT, and the
 * page-aligned iobuf allocated: -1 if either fails.
 */
static int vf1_ns_io(char *ns, size_t len)
{
	int fd;

	snprintf(ns, len, "%sn1", nvme_dev_of(vf1_bdf));
	fd = open(ns, O_RDWR | O_DIRECT);
	if (fd >= 0 && !iobuf && posix_memalign(&iobuf, 4096, 4096)) {
		close(fd);
		return -1;
	}
	return fd;
}

/* One O_DIRECT 4 KiB write on VF1's namespace at LBA (512-byte LBAs) */
static int vf1_write_fd(int fd, uint64_t lba)
{
	memset(iobuf, (int)lba, 4096);
	return pwrite(fd, iobuf, 4096, lba * 512) == 4096 ? 0 : -1;
}

static int vf1_write(uint64_t lba)
{
	return vf1_write_fd(vf1_ns_fd, lba);
}

/* An I/O command on VF1's namespace through the passthrough ioctl */
static int vf1_io(uint8_t opc, uint64_t cdw1011, uint32_t cdw11, uint32_t cdw12,
		  void *buf, uint32_t len)
{
	struct nvme_passthru_cmd c = {
		.opcode = opc, .nsid = 1,
		.addr = (uintptr_t)buf, .data_len = len,
		.cdw10 = (uint32_t)cdw1011,
		.cdw11 = cdw11 ? cdw11 : (uint32_t)(cdw1011 >> 32),
		.cdw12 = cdw12, .timeout_ms = 20000,
	};
	int rc = ioctl(vf1_ns_fd, NVME_IOCTL_IO_CMD, &c);

	return rc < 0 ? -errno : rc;
}

/*
 * UDMQ entries of the multi-range commands: Dataset Management Deallocate
 * logs each range with DLBA=1, Copy its destination range.
 */
static void t_cdq_ranges(uint8_t *qbuf)
{
	volatile uint8_t *q = qbuf;
	uint8_t d[64] = { 0 };
	struct udmq_e e, e2;
	uint32_t id = 0xffff;
	int rc;

	memset(qbuf, 0, 4096);
	rc = cdq_create(vf1_id, 1, qbuf, 1024, 0, &id);
	ok(!rc, "CDQ create for the range checks (rc=%#x)", rc);
	rc = track(id, 1);
	ok(!rc && entry_at(q, 0).esa == 1, "logging started (rc=%#x)", rc);

	/* DSM: 2 ranges {cattr, nlb (a count), slba}, NR 0's based, AD */
	d[4] = 8;
	d[8] = 3000 & 0xff; d[9] = 3000 >> 8;
	d[16 + 4] = 16;
	d[16 + 8] = 3100 & 0xff; d[16 + 9] = 3100 >> 8;
	rc = vf1_io(0x09, 1, 1 << 2, 0, d, 32);
	usleep(100000);
	e = entry_at(q, 1);
	e2 = entry_at(q, 2);
	ok(!rc && e.phase == 1 && e.esa == 0 && e.lbacir == 0 && e.dlba == 1 &&
	   e.nsid == 1 && e.slba == 3000 && e.nlb == 7,
	   "DSM Deallocate range 1: entry SLBA 3000, NLB 7, DLBA 1, LBACIR range (rc=%#x slba=%llu nlb=%u dlba=%u lbacir=%u)",
	   rc, (unsigned long long)e.slba, e.nlb, e.dlba, e.lbacir);
	ok(e2.phase == 1 && e2.esa == 0 && e2.lbacir == 0 && e2.dlba == 1 &&
	   e2.slba == 3100 && e2.nlb == 15,
	   "DSM Deallocate range 2: its own entry SLBA 3100, NLB 15, DLBA 1 (slba=%llu nlb=%u)",
	   (unsigned long long)e2.slba, e2.nlb);
	rc = vf1_io(0x09, 0, 1 << 0, 0, d, 16);	/* IDR only, no AD */
	usleep(100000);
	ok(!rc && entry_at(q, 3).phase == 0, "DSM without Deallocate: no entry (rc=%#x)", rc);

	/* Copy: 2 format-0 source ranges (8 + 4 blocks) to SDLBA 3400 */
	memset(d, 0, sizeof(d));
	d[8] = 3200 & 0xff; d[9] = 3200 >> 8; d[16] = 7;
	d[32 + 8] = 3300 & 0xff; d[32 + 9] = 3300 >> 8; d[32 + 16] = 3;
	rc = vf1_io(0x19, 3400, 0, 1, d, 64);
	usleep(100000);
	e = entry_at(q, 3);
	ok(!rc && e.phase == 1 && e.esa == 0 && e.lbacir == 0 && e.dlba == 0 &&
	   e.nsid == 1 && e.slba == 3400 && e.nlb == 11 && entry_at(q, 4).phase == 0,
	   "Copy: one entry, the destination SLBA 3400, NLB 11 (12 blocks), DLBA 0 (rc=%#x slba=%llu nlb=%u lbacir=%u)",
	   rc, (unsigned long long)e.slba, e.nlb, e.lbacir);
	track(id, 0);
	cdq_delete(id);
}

static void t_cdq(void)
{
	volatile uint8_t *q;
	uint8_t *qbuf, *lbuf;
	uint32_t id = 0xffff, id2;
	struct udmq_e e;
	char ns[64];
	int rc, good;

	if (!pf_identity) {
		for (int i = 0; i < 3; i++)
			ok(1, "# SKIP CDQ tests need the PF in an identity IOMMU domain");
		return;
	}
	snprintf(ns, sizeof(ns), "%sn1", nvme_dev_of(vf1_bdf));
	vf1_ns_fd = open(ns, O_RDWR | O_DIRECT);
	if (posix_memalign(&iobuf, 4096, 4096))
		return;
	qbuf = dma_pages(1);
	q = qbuf;

	/* argument checks */
	rc = cdq_create(vf1_id, 1, qbuf, 1024, 1, NULL);
	ok(rc == SC_INVALID_FIELD, "CDQ create QT=1 (not a UDMQ): Invalid Field (rc=%#x)", rc);
	rc = cdq_create(vf1_id, 1, qbuf, 1020, 0, NULL);
	ok(rc == SC_INVALID_FIELD, "CDQ create size not a whole number of entries: Invalid Field (rc=%#x)", rc);
	rc = cdq_create(vf1_id, 1, qbuf, 0, 0, NULL);
	ok(rc == SC_INVALID_FIELD, "CDQ create size 0: Invalid Field (rc=%#x)", rc);
	rc = cdq_create(0x99, 1, qbuf, 1024, 0, NULL);
	ok(rc == SC_INVALID_CTRL, "CDQ create for an unknown controller: Invalid Controller Identifier (rc=%#x)", rc);
	rc = cdq_delete(5);
	ok(rc == SC_INVALID_CDQ, "CDQ delete unknown CDQID: Invalid Controller Data Queue (rc=%#x)", rc);
	rc = track(5, 1);
	ok(rc == SC_INVALID_CDQ, "Track Send unknown CDQID: Invalid Controller Data Queue (rc=%#x)", rc);
	{
		struct cmd c = { .opc = OPC_TRACK_SEND, .cdw10 = 1 };
		rc = admin(pf_fd, &c);
		ok(rc == SC_INVALID_FIELD, "Track Send SEL=1 (memory tracking, undefined): Invalid Field (rc=%#x)", rc);
		c = (struct cmd){ .opc = OPC_TRACK_RECV };
		rc = admin(pf_fd, &c);
		ok(rc == SC_INVALID_FIELD, "Track Receive: Invalid Field (rc=%#x)", rc);
		c = (struct cmd){ .opc = OPC_CDQ, .cdw10 = 1, .cdw11 = (uint32_t)vf1_id << 16 | 1 };
		rc = admin(vf1_fd, &c);
		ok(rc == SC_INVALID_OPC, "VF: Controller Data Queue is Invalid Opcode+DNR (rc=%#x)", rc);
	}

	/* a 128-entry PC=1 queue for VF1 */
	rc = cdq_create(vf1_id, 1, qbuf, 1024, 0, &id);
	ok(!rc && id < 8, "CDQ create PC=1, 128 entries for VF1: CDQID %u in DW0 (rc=%#x)", id, rc);
	rc = cdq_create(vf1_id, 1, qbuf, 1024, 0, NULL);
	ok(rc == SC_INVALID_FIELD, "a second UDMQ for the same controller: Invalid Field (rc=%#x)", rc);
	rc = track(id, 2);
	ok(rc == SC_INVALID_FIELD, "Track Send LACT=2: Invalid Field (rc=%#x)", rc);

	rc = track(id, 1);
	e = entry_at(q, 0);
	ok(!rc && e.phase == 1 && e.esa == 1 && e.lbacir == 2,
	   "Track Send start: entry 0 = ESA first, LBACIR no-range, phase 1 (rc=%#x esa=%u)", rc, e.esa);
	rc = track(id, 1);
	ok(!rc && entry_at(q, 1).phase == 0, "start again: no-op, no entry");

	rc = vf1_write(800);
	usleep(100000);
	e = entry_at(q, 1);
	ok(!rc && e.phase == 1 && e.esa == 0 && e.lbacir == 0 && e.nsid == 1 && e.slba == 800 && e.nlb == 7,
	   "VF1 Write: entry NSID 1, SLBA 800, NLB 7 (0's based) (nsid=%u slba=%llu nlb=%u)",
	   e.nsid, (unsigned long long)e.slba, e.nlb);
	{
		uint32_t d[2] = { 0xdead, 0xdead };
		struct cmd c = { .opc = OPC_GET_FEAT, .cdw10 = 0x21, .cdw11 = id, .buf = d, .len = 8 };
		rc = admin(pf_fd, &c);
		ok(!rc && d[0] == 0 && d[1] == 0 && (c.result & 0xffff) == id,
		   "Get Features 21h: HP 0, TPT 0, DW0 = CDQID (rc=%#x)", rc);
		c.cdw11 = 7;
		rc = admin(pf_fd, &c);
		ok(rc == SC_INVALID_CDQ, "Get Features 21h unknown CDQID: Invalid Controller Data Queue (rc=%#x)", rc);
	}
	rc = cdq_set_head(id, 5, 0, 0);
	ok(rc == SC_INVALID_FIELD, "Set Features 21h HP beyond the tail: Invalid Field (rc=%#x)", rc);
	rc = cdq_set_head(id, 200, 0, 0);
	ok(rc == SC_INVALID_FIELD, "Set Features 21h HP beyond the queue: Invalid Field (rc=%#x)", rc);
	rc = cdq_set_head(7, 0, 0, 0);
	ok(rc == SC_INVALID_CDQ, "Set Features 21h unknown CDQID: Invalid Controller Data Queue (rc=%#x)", rc);
	{
		struct cmd c = { .opc = OPC_SET_FEAT, .cdw10 = 1u << 31 | 0x21, .cdw11 = id };
		rc = admin(pf_fd, &c);
		ok(rc == (DNR | 0x10d), "Set Features 21h with SV=1: Feature Identifier Not Saveable (rc=%#x)", rc);
	}
	rc = cdq_set_head(id, 2, 1, 3);
	ok(!rc, "Set Features 21h HP=2 (consumed both), ETPT with TPT=3 (rc=%#x)", rc);

	rc = track(id, 0);
	e = entry_at(q, 2);
	ok(!rc && e.esa == 2 && e.lbacir == 2 && e.phase == 1, "Track Send stop: ESA last-stopped marker (esa=%u)", e.esa);
	rc = vf1_write(900);
	usleep(100000);
	ok(!rc && entry_at(q, 3).phase == 0, "no entries while logging is stopped");

	/* suspend with logging on: marker, DUDMQ deletes the queue */
	rc = track(id, 1);
	ok(!rc && entry_at(q, 3).esa == 1, "restart logging: ESA first (rc=%#x)", rc);
	rc = suspend(vf1_id, 1);
	ok(!rc, "Suspend VF1 while logging (rc=%#x)", rc);
	e = entry_at(q, 4);
	ok(e.phase == 1 && e.esa == 3 && e.lbacir == 2, "UDMQ got the ESA last-suspended marker (esa=%u)", e.esa);
	rc = track(id, 0);
	ok(rc == SC_CTRL_SUSP, "Track Send on a suspended controller: Controller Suspended (rc=%#x)", rc);
	rc = resume(vf1_id);
	e = entry_at(q, 5);
	ok(!rc && e.esa == 1, "Resume while logging: ESA first marker (esa=%u)", e.esa);
	{
		struct cmd c = { .opc = OPC_MIG_SEND, .cdw10 = 0,
				 .cdw11 = 1u << 31 | 1 << 16 | vf1_id };
		rc = admin(pf_fd, &c);
		ok(!rc && entry_at(q, 6).esa == 3, "Suspend with DUDMQ=1 (rc=%#x)", rc);
		rc = track(id, 1);
		ok(rc == SC_INVALID_CDQ, "after DUDMQ the UDMQ is gone: Invalid Controller Data Queue (rc=%#x)", rc);
		rc = resume(vf1_id);
		ok(!rc && entry_at(q, 7).phase == 0, "Resume (rc=%#x); no entries into a deleted queue", rc);
	}

	/* an 8-entry queue: full, wrap and phase */
	memset(qbuf, 0, 4096);
	rc = cdq_create(vf1_id, 1, qbuf, 64, 0, &id2);
	ok(!rc, "CDQ create 8 entries (rc=%#x)", rc);
	rc = track(id2, 1);
	good = !rc;
	for (int i = 1; i <= 7; i++)
		good &= !vf1_write(1000 + 8 * i);
	usleep(200000);
	e = entry_at(q, 6);
	ok(good && e.esa == 7 && e.slba == 1048 && entry_at(q, 5).esa == 0 && entry_at(q, 7).phase == 0,
	   "7th entry (the last free slot) is marked ESA queue-full; the 8th slot stays empty");
	rc = cdq_set_head(id2, 7, 0, 0);
	ok(!rc, "host consumes 7 entries: HP=7 (rc=%#x)", rc);
	good = !vf1_write(2000) && !vf1_write(2008);
	usleep(200000);
	e = entry_at(q, 7);
	ok(good && e.phase == 1 && e.slba == 2000, "after the head moved, logging resumes in slot 7 (phase 1)");
	e = entry_at(q, 0);
	ok(e.phase == 0 && e.slba == 2008 && e.esa == 0, "the queue wrapped: slot 0 rewritten with phase 0 (phase=%u slba=%llu)",
	   e.phase, (unsigned long long)e.slba);
	rc = cdq_delete(id2);
	ok(!rc, "CDQ delete (rc=%#x)", rc);

	/* PC=0: PRP1 points to a PRP list */
	lbuf = dma_pages(3);
	{
		uint64_t p1 = phys_of(lbuf + 4096), p2 = phys_of(lbuf + 8192);

		memcpy(lbuf, &p1, 8);
		memcpy(lbuf + 8, &p2, 8);
		rc = cdq_create(vf1_id, 0, lbuf, 2048, 0, &id2);
		ok(!rc && p1 && p2, "CDQ create PC=0 (PRP list, 2 pages, 256 entries) (rc=%#x)", rc);
		rc = track(id2, 1);
		e = entry_at(lbuf + 4096, 0);
		ok(!rc && e.esa == 1 && e.phase == 1 && entry_at(lbuf, 2).phase == 0,
		   "PC=0 queue: entry 0 written to the first listed page, not the list");
		track(id2, 0);
		cdq_delete(id2);
		memset(lbuf, 0, 16);
		lbuf[8] = 1;	/* second PRP misaligned */
		memcpy(lbuf, &p1, 8);
		rc = cdq_create(vf1_id, 0, lbuf, 2048, 0, NULL);
		ok(rc == (DNR | 0x13), "CDQ create PC=0 with a misaligned PRP entry: Invalid PRP Offset (rc=%#x)", rc);
	}
	t_cdq_ranges(qbuf);
	close(vf1_ns_fd);
}

/*
 * --- Vendor memory-change tracking (NVP Track Memory, C5h/C6h) ------------
 *
 * The exact-report checks need VF1 in an identity IOMMU domain (lm_guest.sh
 * sets that up): VF1's DMA addresses are then physical addresses, which the
 * test knows for its own buffers (pagemap) and for VF1's queues (Get
 * Controller State).
 */
#define OPC_NVP_TSEND	0xc5
#define OPC_NVP_TRECV	0xc6
#define OPC_GET_LOG	0x02
#define NVPT_MAXR	16
#define NVPT_MAXPG	(1u << 22)
#define NVPT_MAXRB	65536

struct trange {
	uint64_t start, length;
};

static int nvp_start(int fd, uint16_t cntlid, uint8_t gs, const struct trange *r, uint16_t nr,
		     uint32_t len)
{
	struct cmd c = { .opc = OPC_NVP_TSEND, .cdw10 = 0, .cdw11 = cntlid, .cdw12 = gs,
			 .cdw13 = nr, .buf = (void *)r, .len = len };
	return admin(fd, &c);
}

static int nvp_stop(uint16_t cntlid)
{
	struct cmd c = { .opc = OPC_NVP_TSEND, .cdw10 = 1, .cdw11 = cntlid };
	return admin(pf_fd, &c);
}

static int nvp_report(int fd, uint16_t cntlid, uint64_t start, uint32_t npg, void *buf)
{
	struct cmd c = { .opc = OPC_NVP_TRECV, .cdw11 = cntlid, .cdw12 = (uint32_t)start,
			 .cdw13 = (uint32_t)(start >> 32), .cdw14 = npg, .buf = buf,
			 .len = (npg + 31) / 32 * 4 };
	return admin(fd, &c);
}

/* the guest's RAM, from /proc/iomem, rounded inward to 4 KiB */
static int ram_ranges(struct trange *r, int max)
{
	FILE *f = fopen("/proc/iomem", "r");
	char line[256];
	int n = 0;

	if (!f)
		return 0;
	while (n < max && fgets(line, sizeof(line), f)) {
		unsigned long long a, b;

		if (line[0] == ' ' || !strstr(line, ": System RAM") ||
		    sscanf(line, "%llx-%llx", &a, &b) != 2)
			continue;
		a = (a + 4095) & ~4095ULL;
		b = (b + 1) & ~4095ULL;
		if (b > a) {
			r[n].start = a;
			r[n].length = b - a;
			n++;
		}
	}
	fclose(f);
	return n;
}

/* VF1's completion queues (I/O and admin) as DMA address ranges */
static struct trange vf1_cq[16];
static int vf1_ncq;

static int vf1_cq_ranges(void)
{
	size_t len;
	uint8_t *s = read_state(vf1_id, 1, 1, &len, NULL);
	int nsq, ncq;
	uint8_t *vs;

	vf1_ncq = 0;
	if (!s)
		return -1;
	nsq = le16(s + HDR_LEN + 2);
	ncq = le16(s + HDR_LEN + 4);
	for (int i = 0; i < ncq && vf1_ncq < 15; i++) {
		uint8_t *e = s + HDR_LEN + 8 + 24 * (nsq + i);

		vf1_cq[vf1_ncq].start = le64(e);
		vf1_cq[vf1_ncq++].length = (le16(e + 8) + 1) * 16ULL;
	}
	vs = s + HDR_LEN + 4 * le64(s + 16);
	vf1_cq[vf1_ncq].start = le64(vs + 32);
	vf1_cq[vf1_ncq++].length = (((le32(vs + 20) >> 16) & 0xfff) + 1) * 16ULL;
	free(s);
	return 0;
}

static int in_ranges(uint64_t a, const struct trange *r, int n)
{
	for (int i = 0; i < n; i++)
		if (a + 4096 > (r[i].start & ~4095ULL) && a < r[i].start + r[i].length)
			return 1;
	return 0;
}

struct dirty {
	int data, cq, other, err;
	uint64_t first_other;
};

/*
 * Report (and clear) every tracked page of VF1; classify the dirty pages
 * as one of the @ndata data pages, a page of one of VF1's CQs, or other.
 */
static struct dirty report_all(const struct trange *ram, int nram, const uint64_t *data, int ndata)
{
	static uint8_t bm[NVPT_MAXRB];
	struct dirty d = { 0 };

	for (int i = 0; i < nram; i++) {
		uint64_t pages = ram[i].length >> 12;

		for (uint64_t p = 0; p < pages; p += NVPT_MAXRB * 8) {
			uint32_t npg = pages - p < NVPT_MAXRB * 8 ? pages - p : NVPT_MAXRB * 8;
			uint64_t base = ram[i].start + (p << 12);

			memset(bm, 0xa5, sizeof(bm));
			if (nvp_report(pf_fd, vf1_id, base, npg, bm)) {
				d.err++;
				continue;
			}
			for (uint32_t j = 0; j < npg; j++) {
				uint64_t a = base + ((uint64_t)j << 12);
				int hit = 0;

				if (!(bm[j / 8] & (1 << (j % 8))))
					continue;
				for (int k = 0; k < ndata; k++)
					hit |= data[k] == a;
				if (hit) {
					d.data++;
				} else if (in_ranges(a, vf1_cq, vf1_ncq)) {
					d.cq++;
				} else {
					if (!d.other)
						d.first_other = a;
					d.other++;
				}
			}
			/* bits past NPG in the last dword are 0 */
			for (uint32_t j = npg; j < (npg + 31) / 32 * 32; j++)
				if (bm[j / 8] & (1 << (j % 8)))
					d.err++;
		}
	}
	return d;
}

static void t_track(void)
{
	struct trange r[NVPT_MAXR + 1], ram[NVPT_MAXR];
	uint8_t id[4096], bm[64], *buf;
	uint64_t data[3];
	struct dirty d;
	int rc, nram, fd, exact;
	char ns[64];

	/* discovery */
	rc = identify(pf_fd, 1, id);
	ok(!rc && !memcmp(id + 3072, "NVPT", 4) && id[3076] == 1,
	   "PF Identify Controller vendor area: NVPT version 1 (rc=%#x ver=%u)", rc, id[3076]);
	ok(id[3077] == 16 && id[3078] == 12 && id[3079] == 30 && le32(id + 3080) == NVPT_MAXPG &&
	   le32(id + 3084) == NVPT_MAXRB,
	   "NVPT: MAXR 16, MINGS 12, MAXGS 30, MAXPG 1<<22, MAXRB 65536 (%u %u %u %#x %u)",
	   id[3077], id[3078], id[3079], le32(id + 3080), le32(id + 3084));
	rc = identify(vf1_fd, 1, id);
	ok(!rc && memcmp(id + 3072, "NVPT", 4), "VF Identify Controller: no NVPT signature");
	{
		struct cmd c = { .opc = OPC_GET_LOG, .cdw10 = 0x05 | 1023 << 16, .buf = id, .len = 4096 };

		rc = admin(pf_fd, &c);
		ok(!rc && (le32(id + 4 * 0xc5) & 1) && (le32(id + 4 * 0xc6) & 1),
		   "PF Commands Supported and Effects: C5h and C6h CSUPP (rc=%#x)", rc);
		rc = admin(vf1_fd, &c);
		ok(!rc && !(le32(id + 4 * 0xc5) & 1) && !(le32(id + 4 * 0xc6) & 1),
		   "VF Commands Supported and Effects: no C5h/C6h (rc=%#x)", rc);
	}

	/* a VF cannot */
	r[0] = (struct trange){ 0x100000, 0x100000 };
	rc = nvp_start(vf1_fd, vf2_id, 12, r, 1, 16);
	ok(rc == SC_INVALID_OPC, "VF: Track Memory Send is Invalid Opcode+DNR (rc=%#x)", rc);
	rc = nvp_report(vf1_fd, vf2_id, 0, 32, bm);
	ok(rc == SC_INVALID_OPC, "VF: Track Memory Receive is Invalid Opcode+DNR (rc=%#x)", rc);

	/* argument checks, nothing tracked */
	rc = nvp_report(pf_fd, vf1_id, 0, 32, bm);
	ok(rc == SC_SEQ_ERROR, "Report while not tracking: Command Sequence Error (rc=%#x)", rc);
	rc = nvp_start(pf_fd, 0x99, 12, r, 1, 16);
	ok(rc == SC_INVALID_CTRL, "Start for an unknown CNTLID: Invalid Controller Identifier (rc=%#x)", rc);
	rc = nvp_start(pf_fd, 0, 12, r, 1, 16);
	ok(rc == SC_INVALID_CTRL, "Start for the PF itself: Invalid Controller Identifier (rc=%#x)", rc);
	rc = nvp_report(pf_fd, 0x99, 0, 32, bm);
	ok(rc == SC_INVALID_CTRL, "Report for an unknown CNTLID: Invalid Controller Identifier (rc=%#x)", rc);
	{
		struct cmd c = { .opc = OPC_NVP_TSEND, .cdw10 = 2, .cdw11 = vf1_id };

		rc = admin(pf_fd, &c);
		ok(rc == SC_INVALID_FIELD, "Track Memory Send SEL 2: Invalid Field (rc=%#x)", rc);
		c = (struct cmd){ .opc = OPC_NVP_TRECV, .cdw10 = 1, .cdw11 = vf1_id, .cdw14 = 32,
				  .buf = bm, .len = 4 };
		rc = admin(pf_fd, &c);
		ok(rc == SC_INVALID_FIELD, "Track Memory Receive SEL 1: Invalid Field (rc=%#x)", rc);
	}
	rc = nvp_start(pf_fd, vf1_id, 11, r, 1, 16);
	ok(rc == SC_INVALID_FIELD, "Start GS 11 (below MINGS): Invalid Field (rc=%#x)", rc);
	rc = nvp_start(pf_fd, vf1_id, 31, r, 1, 16);
	ok(rc == SC_INVALID_FIELD, "Start GS 31 (above MAXGS): Invalid Field (rc=%#x)", rc);
	rc = nvp_start(pf_fd, vf1_id, 12, r, 0, 16);
	ok(rc == SC_INVALID_FIELD, "Start NR 0: Invalid Field (rc=%#x)", rc);
	for (int i = 0; i <= NVPT_MAXR; i++)
		r[i] = (struct trange){ 0x100000 + i * 0x10000ULL, 0x1000 };
	rc = nvp_start(pf_fd, vf1_id, 12, r, NVPT_MAXR + 1, 16 * (NVPT_MAXR + 1));
	ok(rc == SC_INVALID_FIELD, "Start NR 17 (above MAXR): Invalid Field (rc=%#x)", rc);
	r[0] = (struct trange){ 0x100800, 0x1000 };
	rc = nvp_start(pf_fd, vf1_id, 12, r, 1, 16);
	ok(rc == SC_INVALID_FIELD, "Start with a misaligned start: Invalid Field (rc=%#x)", rc);
	r[0] = (struct trange){ 0x100000, 0x1800 };
	rc = nvp_start(pf_fd, vf1_id, 12, r, 1, 16);
	ok(rc == SC_INVALID_FIELD, "Start with a misaligned length: Invalid Field (rc=%#x)", rc);
	r[0] = (struct trange){ 0x200000, 0x100000 };
	rc = nvp_start(pf_fd, vf1_id, 21, r, 1, 16);
	ok(rc == SC_INVALID_FIELD, "Start with start/length not multiples of 1 << GS (GS 21): Invalid Field (rc=%#x)", rc);
	r[0] = (struct trange){ 0x100000, 0 };
	rc = nvp_start(pf_fd, vf1_id, 12, r, 1, 16);
	ok(rc == SC_INVALID_FIELD, "Start with length 0: Invalid Field (rc=%#x)", rc);
	r[0] = (struct trange){ 0xfffffffffffff000ULL, 0x2000 };
	rc = nvp_start(pf_fd, vf1_id, 12, r, 1, 16);
	ok(rc == SC_INVALID_FIELD, "Start with a range that wraps: Invalid Field (rc=%#x)", rc);
	r[0] = (struct trange){ 0x100000, 0x10000 };
	r[1] = (struct trange){ 0x10f000, 0x1000 };
	rc = nvp_start(pf_fd, vf1_id, 12, r, 2, 32);
	ok(rc == SC_INVALID_FIELD, "Start with overlapping ranges: Invalid Field (rc=%#x)", rc);
	r[0] = (struct trange){ 0x100000000ULL, (uint64_t)(NVPT_MAXPG + 1) << 12 };
	rc = nvp_start(pf_fd, vf1_id, 12, r, 1, 16);
	ok(rc == SC_INVALID_FIELD, "Start with one range of MAXPG+1 pages: Invalid Field (rc=%#x)", rc);
	r[0] = (struct trange){ 0, (uint64_t)NVPT_MAXPG << 11 };
	r[1] = (struct trange){ 1ULL << 40, ((uint64_t)NVPT_MAXPG << 11) + 4096 };
	rc = nvp_start(pf_fd, vf1_id, 12, r, 2, 32);
	ok(rc == SC_INVALID_FIELD, "Start with ranges summing to MAXPG+1 pages: Invalid Field (rc=%#x)", rc);
	rc = nvp_report(pf_fd, vf1_id, 0, 32, bm);
	ok(rc == SC_SEQ_ERROR, "rejected Starts left nothing tracked: Report is Command Sequence Error (rc=%#x)", rc);
	r[0] = (struct trange){ 1ULL << 40, (uint64_t)NVPT_MAXPG << 12 };
	rc = nvp_start(pf_fd, vf1_id, 12, r, 1, 16);
	ok(!rc, "Start with exactly MAXPG pages (rc=%#x)", rc);
	rc = nvp_stop(vf1_id);
	ok(!rc, "Stop (rc=%#x)", rc);

	/* real tracking of VF1's writes into memory */
	nram = ram_ranges(ram, NVPT_MAXR);
	exact = getenv("LM_VF_IDENTITY") && atoi(getenv("LM_VF_IDENTITY"));
	snprintf(ns, sizeof(ns), "%sn1", nvme_dev_of(vf1_bdf));
	fd = open(ns, O_RDONLY | O_DIRECT);
	buf = dma_pages(3);
	if (!nram || fd < 0 || !buf || vf1_cq_ranges()) {
		ok(0, "tracking set-up: RAM ranges (%d), %s, buffer, VF1 CQs", nram, ns);
		return;
	}
	for (int i = 0; i < 3; i++)
		data[i] = phys_of(buf + 4096 * i);
	diag("tracking %d RAM ranges, first %#llx+%#llx; data pages %#llx %#llx %#llx; %d CQs",
	     nram, (unsigned long long)ram[0].start, (unsigned long long)ram[0].length,
	     (unsigned long long)data[0], (unsigned long long)data[1], (unsigned long long)data[2],
	     vf1_ncq);
	/* a udev probe of VF1's namespace (after an earlier writer closed it) */
	if (system("command -v udevadm >/dev/null && udevadm settle -t 10 >/dev/null 2>&1; sleep 1"))
		diag("udevadm settle failed");

	rc = nvp_start(pf_fd, vf1_id, 12, ram, nram, 16 * nram);
	ok(!rc, "Start tracking VF1: %d ranges (all RAM), GS 12 (rc=%#x)", nram, rc);
	rc = nvp_start(pf_fd, vf1_id, 12, ram, nram, 16 * nram);
	ok(rc == SC_SEQ_ERROR, "Start twice: Command Sequence Error (rc=%#x)", rc);
	rc = nvp_report(pf_fd, vf1_id, ram[0].start + 0x800, 32, bm);
	ok(rc == SC_INVALID_FIELD, "Report with a misaligned start: Invalid Field (rc=%#x)", rc);
	rc = nvp_report(pf_fd, vf1_id, ram[0].start, 0, bm);
	ok(rc == SC_INVALID_FIELD, "Report NPG 0: Invalid Field (rc=%#x)", rc);
	{
		struct cmd c = { .opc = OPC_NVP_TRECV, .cdw11 = vf1_id, .cdw14 = NVPT_MAXRB * 8 + 1,
				 .buf = bm, .len = 4 };
		rc = admin(pf_fd, &c);
		ok(rc == SC_INVALID_FIELD, "Report NPG above MAXRB*8: Invalid Field (rc=%#x)", rc);
	}
	d = report_all(ram, nram, data, 3);
	diag("first report: %d data, %d CQ, %d other pages, %d errors", d.data, d.cq, d.other, d.err);
	ok(!d.err, "Report and clear of all RAM (before any I/O) succeeds");

	if (pread(fd, buf, 3 * 4096, 4096 * 64) != 3 * 4096) {
		ok(0, "VF1 read of 3 pages");
		close(fd);
		nvp_stop(vf1_id);
		return;
	}
	d = report_all(ram, nram, data, 3);
	diag("after a 3-page read: %d data, %d CQ, %d other pages (first other %#llx), %d errors",
	     d.data, d.cq, d.other, (unsigned long long)d.first_other, d.err);
	if (exact) {
		ok(!d.err && d.data == 3 && d.cq == 1 && !d.other,
		   "after a 3-page read through VF1: exactly the 3 data pages and 1 CQ page are dirty");
	} else {
		ok(1, "# SKIP exact report needs VF1 in an identity IOMMU domain");
	}
	d = report_all(ram, nram, data, 3);
	ok(!d.err && !d.data && !d.cq && !d.other, "second report: clear (%d data, %d CQ, %d other)",
	   d.data, d.cq, d.other);

	/* the last report of a migration is read with the controller suspended */
	rc = pread(fd, buf, 3 * 4096, 4096 * 80) == 3 * 4096 ? 0 : -1;
	rc |= suspend(vf1_id, 1);
	ok(!rc, "another read, then Suspend VF1 (rc=%#x)", rc);
	d = report_all(ram, nram, data, 3);
	if (exact)
		ok(!d.err && d.data == 3 && d.cq == 1 && !d.other,
		   "Report while VF1 is suspended: the 3 data pages and 1 CQ page (%d/%d/%d)",
		   d.data, d.cq, d.other);
	else
		ok(!d.err && d.data == 3, "Report while VF1 is suspended: the 3 data pages");
	rc = resume(vf1_id);
	ok(!rc, "Resume VF1 (rc=%#x)", rc);

	/* a reset of VF1's controller keeps tracking: its re-initialisation is reported */
	{
		char state[32];

		reset_ctrl(vf1_bdf, state, sizeof(state));
		d = report_all(ram, nram, data, 3);
		ok(!d.err && d.cq + d.other > 0,
		   "after a reset of VF1's controller tracking continues: Identify data and CQEs reported (%d CQ, %d other)",
		   d.cq, d.other);
	}

	rc = nvp_stop(vf1_id);
	ok(!rc, "Stop (rc=%#x)", rc);
	rc = nvp_stop(vf1_id);
	ok(!rc, "Stop when not tracking succeeds (rc=%#x)", rc);
	rc = nvp_report(pf_fd, vf1_id, ram[0].start, 32, bm);
	ok(rc == SC_SEQ_ERROR, "Report after Stop: Command Sequence Error (rc=%#x)", rc);
	rc = pread(fd, buf, 4096, 0) == 4096;
	ok(rc, "VF1 I/O still works");
	close(fd);
	munmap(buf, 3 * 4096);
}

/*
 * --- VF2 continues VF1's queues ------------------------------------------
 *
 * With VF1 and VF2 in identity IOMMU domains their bus addresses
 * coincide, so VF2 can take over VF1's queues in place: a read submitted
 * to the suspended VF1 (doorbell latched, SQE not fetched) is moved with
 * Get/Set Controller State to VF2, which fetches it on Resume, reads the
 * data into the reader's buffer and posts the completion into VF1's CQ
 * with the phase restored from S0PT. The VF1 driver notices at its I/O
 * timeout (it polls the CQ then); the data is checked.
 */
static void t_cross_migrate(void)
{
	int to_child[2], from_child[2], rc, st;
	uint8_t *s, res = 0xff;
	size_t len;
	char ns[64], go = 1;
	pid_t pid;
	time_t t0;

	if (!getenv("LM_VF_IDENTITY") || !atoi(getenv("LM_VF_IDENTITY"))) {
		ok(1, "# SKIP cross-VF test needs identity IOMMU domains for the VFs");
		return;
	}
	if (!vf2_bar && vf2_map()) {
		ok(0, "map VF2 BAR0");
		return;
	}
	vf1_ns_fd = vf1_ns_io(ns, sizeof(ns));
	if (vf1_ns_fd < 0) {
		ok(0, "open %s", ns);
		return;
	}
	memset(iobuf, 0x5a, 4096);
	memcpy(iobuf, "LM-CROSS-VF", 11);
	ok(pwrite(vf1_ns_fd, iobuf, 4096, 4096 * 300) == 4096, "write a pattern through VF1");

	rc = suspend(vf1_id, 1);
	ok(!rc, "Suspend VF1 (rc=%#x)", rc);
	if (pipe(to_child) || pipe(from_child))
		return;
	pid = fork();
	if (!pid) {
		void *b;

		if (posix_memalign(&b, 4096, 4096))
			_exit(1);
		memset(b, 0, 4096);
		res = pread(vf1_ns_fd, b, 4096, 4096 * 300) == 4096 &&
		      !memcmp(b, iobuf, 4096) ? 0 : 2;
		if (write(from_child[1], &res, 1) != 1)
			_exit(1);
		/* keep the buffer until VF1 has been resumed */
		if (read(to_child[0], &go, 1) != 1)
			_exit(1);
		_exit(0);
	}
	sleep(1);

	s = read_state(vf1_id, 1, 1, &len, NULL);
	{
		int nsq = s ? le16(s + HDR_LEN + 2) : 0, pending = 0;

		for (int i = 0; i < nsq; i++) {
			uint8_t *e = s + HDR_LEN + 8 + 24 * i;

			pending |= le16(e + 16) != le16(e + 18);
		}
		ok(s && pending, "VF1's state holds an SQ with tail != head (the latched read)");
	}
	if (!s)
		return;

	vf2_disable();
	ok(vf2_enable() == 0, "enable VF2 as the destination");
	rc = suspend(vf2_id, 1);
	ok(!rc, "Suspend VF2 (rc=%#x)", rc);
	rc = set_state(vf2_id, 3, 1, 1, 0, s, len);
	ok(!rc, "Set State: VF1's full state onto VF2 (rc=%#x)", rc);
	rc = resume(vf2_id);
	ok(!rc, "Resume VF2 (rc=%#x)", rc);

	t0 = time(NULL);
	rc = read(from_child[0], &res, 1);
	ok(rc == 1 && res == 0,
	   "the read latched on VF1 was completed by VF2 with the right data (%ld s, VF1 driver polled at its timeout)",
	   (long)(time(NULL) - t0));

	{
		uint8_t hdr[HDR_LEN];
		uint32_t dw0 = 0;

		rc = get_state(pf_fd, vf1_id, 0, 0, 0, hdr, sizeof(hdr), &dw0);
		ok(!rc && (dw0 & 1), "VF1 was still suspended then: VF2 executed the read");
	}

	/*
	 * Clean up. VF1's own state is stale (it would fetch the read again
	 * and its CQ head is now past its tail), which never happens in a real
	 * migration because the source is not resumed. Resume it so that it
	 * processes admin commands, and have the driver reset it; the child
	 * keeps its buffer until then.
	 */
	vf2_disable();
	rc = resume(vf1_id);
	ok(!rc, "Resume VF1 (rc=%#x)", rc);
	{
		char state[32];

		reset_ctrl(vf1_bdf, state, sizeof(state));
		ok(!strncmp(state, "live", 4), "VF1 controller reset by its driver (state %s)", state);
	}
	if (write(to_child[1], &go, 1) != 1)
		diag("child gone");
	waitpid(pid, &st, 0);
	memset(iobuf, 0, 4096);
	ok(pread(vf1_ns_fd, iobuf, 4096, 4096 * 300) == 4096 && !memcmp(iobuf, "LM-CROSS-VF", 11),
	   "VF1 still works afterwards");
	free(s);
	close(vf1_ns_fd);
}

/*
 * --- PC=0 (PRP-list) I/O queues across a migration ------------------------
 *
 * lm_test creates a PC=0 I/O CQ/SQ pair on VF1 itself (Create I/O CQ/SQ
 * through the admin passthrough ioctl, whose data buffer becomes PRP1, the
 * PRP list; VF1 in an identity IOMMU domain so that bus addresses are
 * physical ones), drives it through VF1's BAR0 doorbells, migrates VF1 to
 * VF2 (NVMe state v0) and carries on on VF2. Each queue is two pages, listed
 * in reverse order, so a contiguous reading of the queue would go wrong.
 */
struct uq {
	volatile uint8_t *bar;
	uint8_t *sq[2], *cq[2];
	uint16_t qid, sqs, cqs, cid;
	uint32_t sqt, cqh;
	uint8_t phase;
};

static volatile uint8_t *bar_map(const char *bdf)
{
	char path[256];
	void *p;
	int fd;

	snprintf(path, sizeof(path), "/sys/bus/pci/devices/%s/resource0", bdf);
	fd = open(path, O_RDWR | O_SYNC);
	if (fd < 0)
		return NULL;
	p = mmap(NULL, 0x2000, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	close(fd);
	return p == MAP_FAILED ? NULL : p;
}

/* queue an SQE: opcode, data page (physical), SLBA, NLB (0's based) */
static void uq_submit(struct uq *q, uint8_t opc, uint64_t prp1, uint64_t slba, uint16_t nlb)
{
	uint32_t off = q->sqt * 64;
	uint8_t *e = q->sq[off / 4096] + off % 4096;
	uint32_t dw0 = opc | (uint32_t)q->cid++ << 16, nsid = 1, dw12 = nlb;
	uint32_t lo = (uint32_t)slba, hi = (uint32_t)(slba >> 32);

	memset(e, 0, 64);
	memcpy(e, &dw0, 4);
	memcpy(e + 4, &nsid, 4);
	memcpy(e + 24, &prp1, 8);
	memcpy(e + 40, &lo, 4);
	memcpy(e + 44, &hi, 4);
	memcpy(e + 48, &dw12, 4);
	q->sqt = (q->sqt + 1) % q->sqs;
}

static void uq_ring(struct uq *q)
{
	__sync_synchronize();
	*(volatile uint32_t *)(q->bar + 0x1000 + 8 * q->qid) = q->sqt;
}

/* wait for the next CQE; returns its status (no phase), -1 on timeout */
static int uq_reap(struct uq *q)
{
	uint32_t off = q->cqh * 16;
	volatile uint8_t *e = q->cq[off / 4096] + off % 4096;
	uint32_t dw3;

	for (int i = 0; i < 5000; i++) {
		dw3 = *(volatile uint32_t *)(e + 12);
		if (((dw3 >> 16) & 1) == q->phase) {
			if (++q->cqh == q->cqs) {
				q->cqh = 0;
				q->phase ^= 1;
			}
			*(volatile uint32_t *)(q->bar + 0x1000 + 8 * q->qid + 4) = q->cqh;
			return dw3 >> 17;
		}
		usleep(1000);
	}
	return -1;
}

/* n commands, in batches that fit the SQ; 0 when all succeeded */
static int uq_run(struct uq *q, int n, uint8_t opc, uint64_t prp1, uint64_t slba)
{
	int bad = 0;

	while (n > 0) {
		int b = n > 50 ? 50 : n;

		for (int i = 0; i < b; i++)
			uq_submit(q, opc, prp1, slba, 7);
		uq_ring(q);
		for (int i = 0; i < b; i++)
			bad |= uq_reap(q) != 0;
		n -= b;
	}
	return bad;
}

static void t_pc0_migrate(void)
{
	uint8_t *mem, *list, *data, *st = NULL, *d;
	uint64_t sq_list, cq_list, dp[2];
	struct uq q = { 0 };
	volatile uint8_t *vf1_bar;
	uint32_t nsqa = 0;
	size_t len, dlen;
	int rc, nsq, ncq, used = 0, found;
	char state[32];

	if (!getenv("LM_VF_IDENTITY") || !atoi(getenv("LM_VF_IDENTITY"))) {
		ok(1, "# SKIP PC=0 migration needs identity IOMMU domains for the VFs");
		return;
	}
	if (!vf2_bar && vf2_map()) {
		ok(0, "map VF2 BAR0");
		return;
	}
	vf1_bar = q.bar = bar_map(vf1_bdf);
	mem = dma_pages(4);	/* SQ pages 3, 1; CQ pages 2, 0 */
	list = dma_pages(2);	/* SQ list, CQ list */
	data = dma_pages(2);
	if (!q.bar || !mem || !list || !data) {
		ok(0, "map VF1 BAR0 and lock queue memory");
		return;
	}
	ok(!((*(volatile uint32_t *)q.bar >> 16) & 1), "CAP.CQR = 0 with hmlms: PC=0 queues allowed");

	/* a free QID: above every queue VF1's driver uses, within Number of Queues */
	{
		struct cmd c = { .opc = OPC_GET_FEAT, .cdw10 = 7 };

		rc = admin(vf1_fd, &c);
		nsqa = (c.result & 0xffff) + 1;
		st = read_state(vf1_id, 1, 0, &len, NULL);
		found = !!st;
		if (st) {
			nsq = le16(st + HDR_LEN + 2);
			for (int i = 0; i < nsq; i++)
				if (le16(st + HDR_LEN + 8 + 24 * i + 10) > used)
					used = le16(st + HDR_LEN + 8 + 24 * i + 10);
			free(st);
		}
		q.qid = used + 1;
		ok(!rc && found && q.qid <= nsqa, "VF1 has a free I/O queue ID %u (driver uses up to %d of %u)",
		   q.qid, used, nsqa);
		if (q.qid > nsqa)
			return;
	}
	q.sqs = 128;		/* 2 pages of 64-byte SQEs */
	q.cqs = 512;		/* 2 pages of 16-byte CQEs */
	q.sq[0] = mem + 3 * 4096; q.sq[1] = mem + 4096;
	q.cq[0] = mem + 2 * 4096; q.cq[1] = mem;
	q.phase = 1;
	q.cid = 0x100;
	sq_list = phys_of(list);
	cq_list = phys_of(list + 4096);
	{
		uint64_t e[2];

		e[0] = phys_of(q.sq[0]); e[1] = phys_of(q.sq[1]);
		memcpy(list, e, 16);
		e[0] = phys_of(q.cq[0]); e[1] = phys_of(q.cq[1]);
		memcpy(list + 4096, e, 16);
	}
	dp[0] = phys_of(data);
	dp[1] = phys_of(data + 4096);

	/* Create I/O CQ/SQ with PC=0; a bad list first */
	{
		uint8_t saved = list[4096 + 8];
		struct cmd c = { .opc = 0x05, .cdw10 = (uint32_t)(q.cqs - 1) << 16 | q.qid,
				 .cdw11 = 0, .buf = list + 4096, .len = 4096 };

		list[4096 + 8] |= 0x10;		/* second page misaligned */
		rc = admin(vf1_fd, &c);
		ok(rc == (DNR | 0x13), "Create I/O CQ PC=0 with a misaligned PRP list entry: Invalid PRP Offset (rc=%#x)", rc);
		list[4096 + 8] = saved;
		rc = admin(vf1_fd, &c);
		ok(!rc, "Create I/O CQ %u PC=0 (2-page PRP list), IEN=0, on VF1 (rc=%#x)", q.qid, rc);
		c = (struct cmd){ .opc = 0x01, .cdw10 = (uint32_t)(q.sqs - 1) << 16 | q.qid,
				  .cdw11 = (uint32_t)q.qid << 16, .buf = list, .len = 4096 };
		rc = admin(vf1_fd, &c);
		ok(!rc, "Create I/O SQ %u PC=0 (2-page PRP list) on VF1 (rc=%#x)", q.qid, rc);
		if (rc)
			goto reset;
	}

	/* 251 commands on VF1: the SQ wraps, pattern A at LBA 5000 */
	memset(data, 0xa5, 4096);
	memcpy(data, "PC0-PATTERN-A", 13);
	rc = uq_run(&q, 250, 0x00, 0, 0);		/* Flush */
	rc |= uq_run(&q, 1, 0x01, dp[0], 5000);		/* Write A */
	ok(!rc && q.cqh == 251 && q.sqt == 251 % 128,
	   "251 commands through VF1's PC=0 queues, SQ wrapped (rc=%d cq head %u, sq tail %u)", rc, q.cqh, q.sqt);

	/* suspend VF1, ring a Read of A there: latched */
	rc = suspend(vf1_id, 1);
	ok(!rc, "Suspend VF1 (rc=%#x)", rc);
	memset(data + 4096, 0, 4096);
	uq_submit(&q, 0x02, dp[1], 5000, 7);
	uq_ring(&q);
	usleep(200000);
	ok(!(((*(volatile uint32_t *)(q.cq[0] + 251 * 16 + 12)) >> 16) & 1),
	   "a Read rung on suspended VF1 is not executed");

	st = read_state(vf1_id, 1, 0, &len, NULL);
	found = 0;
	if (st) {
		nsq = le16(st + HDR_LEN + 2);
		ncq = le16(st + HDR_LEN + 4);
		for (int i = 0; i < nsq; i++) {
			uint8_t *e = st + HDR_LEN + 8 + 24 * i;

			if (le16(e + 10) == q.qid && le64(e) == sq_list && !(e[14] & 1) &&
			    le16(e + 16) == 251 % 128 && le16(e + 18) == 252 % 128)
				found |= 1;
		}
		for (int i = 0; i < ncq; i++) {
			uint8_t *e = st + HDR_LEN + 8 + 24 * nsq + 24 * i;

			if (le16(e + 10) == q.qid && le64(e) == cq_list && !(e[16] & 1) &&
			    le16(e + 14) == 251)
				found |= 2;
		}
	}
	ok(found == 3, "Get State: the SQ and CQ entries carry PC=0, PRP1 = the PRP list, head/tail (found=%d)", found);
	if (!st)
		goto resume;

	/* onto VF2 */
	vf2_disable();
	ok(vf2_enable() == 0, "enable VF2 as the destination");
	rc = suspend(vf2_id, 1);
	ok(!rc, "Suspend VF2 (rc=%#x)", rc);
	{
		uint8_t *bad = malloc(len), *e;
		uint64_t badlist = phys_of(data);

		/* the list is read from memory: a PRP1 whose list has a 0 entry */
		memcpy(bad, st, len);
		memset(data, 0, 16);
		for (int i = 0; i < le16(bad + HDR_LEN + 2); i++) {
			e = bad + HDR_LEN + 8 + 24 * i;
			if (le16(e + 10) == q.qid)
				memcpy(e, &badlist, 8);
		}
		rc = set_state(vf2_id, 3, 1, 0, 0, bad, len);
		ok(rc == (DNR | 0x13), "Set State PC=0 SQ whose PRP list has a 0 entry: Invalid PRP Offset (rc=%#x)", rc);
		free(bad);
	}
	d = read_state(vf2_id, 1, 0, &dlen, NULL);
	ok(d && le16(d + HDR_LEN + 2) == 0 && le16(d + HDR_LEN + 4) == 0,
	   "the rejected Set State left VF2 without I/O queues");
	free(d);
	rc = set_state(vf2_id, 3, 1, 0, 0, st, len);
	ok(!rc, "Set State: VF1's NVMe state with the PC=0 queues onto VF2 (rc=%#x)", rc);
	d = read_state(vf2_id, 1, 0, &dlen, NULL);
	ok(d && dlen == len && !memcmp(d + HDR_LEN, st + HDR_LEN, len - HDR_LEN),
	   "VF2's NVMe state equals VF1's, PC=0 queues included");
	free(d);
	rc = resume(vf2_id);
	ok(!rc, "Resume VF2 (rc=%#x)", rc);

	/* VF2 fetches the latched Read from the PC=0 SQ */
	q.bar = vf2_bar;
	rc = uq_reap(&q);
	ok(!rc && !memcmp(data + 4096, "PC0-PATTERN-A", 13),
	   "VF2 executed the Read latched on VF1: CQE in slot 251, pattern A read (rc=%d)", rc);

	/* carry on on VF2: Write B, Flushes up to CQ page 2, Read B there */
	memset(data, 0x5b, 4096);
	memcpy(data, "PC0-PATTERN-B", 13);
	rc = uq_run(&q, 1, 0x01, dp[0], 5008);
	rc |= uq_run(&q, 3, 0x00, 0, 0);
	memset(data + 4096, 0, 4096);
	rc |= uq_run(&q, 1, 0x02, dp[1], 5008);
	ok(!rc && q.cqh == 257 && q.sqt == 1 && !memcmp(data, data + 4096, 4096),
	   "VF2 carries on: Write then Read of pattern B verified, SQ wrapped to page 1, CQE in CQ page 2 (rc=%d cqh=%u sqt=%u)",
	   rc, q.cqh, q.sqt);
	memset(data + 4096, 0, 4096);
	rc = uq_run(&q, 1, 0x02, dp[1], 5000);
	ok(!rc && !memcmp(data + 4096, "PC0-PATTERN-A", 13), "VF2 reads pattern A written through VF1 (rc=%d)", rc);
	{
		uint8_t hdr[HDR_LEN];
		uint32_t dw0 = 0;

		rc = get_state(pf_fd, vf1_id, 0, 0, 0, hdr, sizeof(hdr), &dw0);
		ok(!rc && (dw0 & 1), "VF1 stayed suspended: VF2 did the I/O");
	}
	vf2_disable();
	free(st);
resume:
	rc = resume(vf1_id);
	ok(!rc, "Resume VF1 (rc=%#x)", rc);
reset:
	/* VF1's copy of the queues is stale: have its driver reset it */
	reset_ctrl(vf1_bdf, state, sizeof(state));
	ok(!strncmp(state, "live", 4), "VF1 controller reset by its driver (state %s)", state);
	munmap((void *)vf1_bar, 0x2000);
}

/*
 * --- One-Shot asynchronous events on the PF ------------------------------
 *
 * The PF's Linux driver consumes an event of type 4h (One-Shot) without a
 * trace, so this group takes the PF from nvme and drives its admin queue
 * from userspace through BAR0 (the PF is in an identity IOMMU domain:
 * physical addresses are bus addresses). It runs last and gives the PF back
 * to nvme. VF1's driver keeps running; it only writes.
 */
struct uadm {
	volatile uint8_t *bar;
	uint8_t *sq, *cq;
	uint16_t sqt, cqh, cid;
	uint8_t phase;
};

struct ucqe {
	uint32_t dw0, dw1;
	uint16_t cid, status;
};

static uint16_t uadm_submit(struct uadm *a, uint8_t opc, uint64_t prp1,
			    uint32_t cdw10, uint32_t cdw11, uint32_t cdw12, uint32_t cdw13)
{
	uint8_t *e = a->sq + 64 * a->sqt;
	uint16_t cid = a->cid++;
	uint32_t dw0 = opc | (uint32_t)cid << 16, dw[4] = { cdw10, cdw11, cdw12, cdw13 };

	memset(e, 0, 64);
	memcpy(e, &dw0, 4);
	memcpy(e + 24, &prp1, 8);
	memcpy(e + 40, dw, 16);
	a->sqt = (a->sqt + 1) % 32;
	__sync_synchronize();
	*(volatile uint32_t *)(a->bar + 0x1000) = a->sqt;
	return cid;
}

/* next CQE within @ms milliseconds: 0, or -1 if none */
static int uadm_reap(struct uadm *a, struct ucqe *c, int ms)
{
	volatile uint8_t *e = a->cq + 16 * a->cqh;

	for (int i = 0; i < ms; i++) {
		uint32_t dw3 = *(volatile uint32_t *)(e + 12);

		if (((dw3 >> 16) & 1) == a->phase) {
			c->dw0 = *(volatile uint32_t *)e;
			c->dw1 = *(volatile uint32_t *)(e + 4);
			c->cid = dw3 & 0xffff;
			c->status = dw3 >> 17;
			if (++a->cqh == 32) {
				a->cqh = 0;
				a->phase ^= 1;
			}
			*(volatile uint32_t *)(a->bar + 0x1004) = a->cqh;
			return 0;
		}
		usleep(1000);
	}
	return -1;
}

/* submit and wait for that command's completion (no other is expected) */
static int uadm_cmd(struct uadm *a, uint8_t opc, uint64_t prp1, uint32_t cdw10,
		    uint32_t cdw11, uint32_t cdw12, uint32_t cdw13, uint32_t *dw0)
{
	uint16_t cid = uadm_submit(a, opc, prp1, cdw10, cdw11, cdw12, cdw13);
	struct ucqe c;

	if (uadm_reap(a, &c, 5000) || c.cid != cid)
		return -1;
	if (dw0)
		*dw0 = c.dw0;
	return c.status;
}

static int uadm_wait_rdy(struct uadm *a, int want)
{
	for (int i = 0; i < 5000; i++) {
		if ((int)(*(volatile uint32_t *)(a->bar + 0x1c) & 1) == want)
			return 0;
		usleep(1000);
	}
	return -1;
}

/*
 * A reset of the PF takes its secondary controllers offline and frees their
 * resources: give VF1 back what lm_guest.sh provisioned (4 VQ, 1 VI) and
 * bring it online, through the test's admin queue (@a) or the PF's driver.
 */
static int vf1_online(struct uadm *a)
{
	static const uint32_t cdw10[3] = { 8 | 0 << 8, 8 | 1 << 8, 9 };
	static const uint32_t nr[3] = { 4, 1, 0 };
	int rc = 0;

	for (int i = 0; i < 3 && !rc; i++) {
		struct cmd c = { .opc = 0x1c, .cdw10 = cdw10[i] | (uint32_t)vf1_id << 16,
				 .cdw11 = nr[i] };

		rc = a ? uadm_cmd(a, 0x1c, 0, c.cdw10, c.cdw11, 0, 0, NULL) : admin(pf_fd, &c);
		if (rc)
			diag("Virtualization Management cdw10 %#x cdw11 %u: %#x", c.cdw10, c.cdw11, rc);
	}
	return rc;
}

static void t_aen(void)
{
	struct uadm a = { 0 };
	uint8_t *mem, *q;
	uint32_t id = 0xffff, cmdreg = 0;
	struct ucqe c;
	uint16_t aer;
	char path[256], ns[64], state[32];
	int fd, rc, good, nsfd;

	if (!pf_identity) {
		ok(1, "# SKIP One-Shot AEN tests need the PF in an identity IOMMU domain");
		return;
	}
	nsfd = vf1_ns_io(ns, sizeof(ns));
	if (nsfd < 0) {
		ok(0, "open %s", ns);
		return;
	}

	/* take the PF from nvme; memory decode and bus mastering back on */
	close(pf_fd);
	pf_fd = -1;
	snprintf(path, sizeof(path), "/sys/bus/pci/devices/%s/driver/unbind", pf_bdf);
	fd = open(path, O_WRONLY);
	rc = fd >= 0 && write(fd, pf_bdf, strlen(pf_bdf)) == (ssize_t)strlen(pf_bdf);
	if (fd >= 0)
		close(fd);
	ok(rc, "unbind the PF from nvme");
	snprintf(path, sizeof(path), "/sys/bus/pci/devices/%s/config", pf_bdf);
	fd = open(path, O_RDWR);
	if (fd >= 0) {
		if (pread(fd, &cmdreg, 2, 4) == 2) {
			cmdreg |= 0x6;
			if (pwrite(fd, &cmdreg, 2, 4) != 2)
				diag("could not enable PF memory decode");
		}
		close(fd);
	}
	a.bar = bar_map(pf_bdf);
	mem = dma_pages(3);	/* admin SQ, admin CQ, CDQ */
	if (!a.bar || !mem) {
		ok(0, "map the PF's BAR0");
		goto rebind;
	}
	a.sq = mem;
	a.cq = mem + 4096;
	q = mem + 8192;
	a.phase = 1;
	a.cid = 0x40;
	*(volatile uint32_t *)(a.bar + 0x14) = 0;
	uadm_wait_rdy(&a, 0);
	*(volatile uint32_t *)(a.bar + 0x24) = 31 << 16 | 31;
	*(volatile uint32_t *)(a.bar + 0x28) = (uint32_t)phys_of(a.sq);
	*(volatile uint32_t *)(a.bar + 0x2c) = (uint32_t)(phys_of(a.sq) >> 32);
	*(volatile uint32_t *)(a.bar + 0x30) = (uint32_t)phys_of(a.cq);
	*(volatile uint32_t *)(a.bar + 0x34) = (uint32_t)(phys_of(a.cq) >> 32);
	*(volatile uint32_t *)(a.bar + 0x14) = 6 << 16 | 4 << 20 | 1;
	ok(!uadm_wait_rdy(&a, 1), "PF enabled by the test's own admin queue");
	/* the PF's reset at unbind took its VFs offline: VF1 back online */
	rc = vf1_online(&a);
	reset_ctrl(vf1_bdf, state, sizeof(state));
	ok(!rc && !strncmp(state, "live", 4),
	   "VF1 online again (Virtualization Management) and reset by its driver (rc=%#x state %s)", rc, state);

	/* an 8-entry UDMQ for VF1, logging on: entry 0 is the start marker */
	rc = uadm_cmd(&a, OPC_CDQ, phys_of(q), 0, (uint32_t)vf1_id << 16 | 1, 64, 0, &id);
	id &= 0xffff;
	good = !rc;
	rc = uadm_cmd(&a, OPC_TRACK_SEND, 0, 1 << 16, id, 0, 0, NULL);
	good &= !rc && entry_at(q, 0).esa == 1;
	/* ETPT with TPT = 3 (HP stays 0) */
	rc = uadm_cmd(&a, OPC_SET_FEAT, 0, 0x21, 1u << 31 | id, 0, 3, NULL);
	good &= !rc;
	ok(good, "UDMQ (8 entries) created and logging for VF1, ETPT armed with TPT=3 (CDQID %u)", id);

	aer = uadm_submit(&a, 0x0c, 0, 0, 0, 0, 0);
	good = !vf1_write_fd(nsfd, 4000);
	rc = uadm_reap(&a, &c, 300);
	ok(good && rc, "tail 2 (TPT 3 not reached): no event");
	good = !vf1_write_fd(nsfd, 4008);
	rc = uadm_reap(&a, &c, 3000);
	ok(good && !rc && c.cid == aer && !c.status && (c.dw0 & 7) == 4 &&
	   ((c.dw0 >> 8) & 0xff) == 0 && ((c.dw0 >> 16) & 0xff) == 0 && c.dw1 == id,
	   "tail reaches TPT 3: One-Shot AEN (type 4h, info 00h TPT, DW1 CDQID) (rc=%d cid=%#x dw0=%#x dw1=%u)",
	   rc, c.cid, c.dw0, c.dw1);

	aer = uadm_submit(&a, 0x0c, 0, 0, 0, 0, 0);
	good = !vf1_write_fd(nsfd, 4016);
	rc = uadm_reap(&a, &c, 300);
	ok(good && rc, "TPT is one-shot: the next entry sends no event");
	{
		uint32_t dw0 = 0;
		uint8_t *d = q + 2048;	/* past the 8 entries */

		rc = uadm_cmd(&a, OPC_GET_FEAT, phys_of(d), 0x21, id, 0, 0, &dw0);
		ok(!rc && le32(d) == 0 && le32(d + 4) == 0 && dw0 == id,
		   "Get Features 21h after the event: HP 0, ETPT and TPT cleared (rc=%#x dw0=%#x tpt=%u)",
		   rc, dw0, le32(d + 4));
	}
	good = !vf1_write_fd(nsfd, 4024) && !vf1_write_fd(nsfd, 4032);
	rc = uadm_reap(&a, &c, 300);
	ok(good && rc, "tail 6, one free slot left: no event");
	good = !vf1_write_fd(nsfd, 4040);
	rc = uadm_reap(&a, &c, 3000);
	ok(good && !rc && c.cid == aer && !c.status && (c.dw0 & 7) == 4 &&
	   ((c.dw0 >> 8) & 0xff) == 1 && c.dw1 == id && entry_at(q, 6).esa == 7 &&
	   entry_at(q, 6).slba == 4040,
	   "the entry that fills the queue: ESA 111b, and a One-Shot AEN (info 01h CDQ full, DW1 CDQID) (rc=%d dw0=%#x dw1=%u esa=%u)",
	   rc, c.dw0, c.dw1, entry_at(q, 6).esa);
	good = !vf1_write_fd(nsfd, 4048);
	usleep(100000);
	ok(good && entry_at(q, 7).phase == 0, "full: nothing more is posted");

	rc = uadm_cmd(&a, OPC_CDQ, 0, 1, id, 0, 0, NULL);
	ok(!rc, "CDQ delete (rc=%#x)", rc);
	*(volatile uint32_t *)(a.bar + 0x14) = 0;
	uadm_wait_rdy(&a, 0);
	munmap((void *)a.bar, 0x2000);
rebind:
	fd = open("/sys/bus/pci/drivers/nvme/bind", O_WRONLY);
	rc = fd >= 0 && write(fd, pf_bdf, strlen(pf_bdf)) == (ssize_t)strlen(pf_bdf);
	if (fd >= 0)
		close(fd);
	ok(rc, "PF given back to nvme");
	for (int i = 0; i < 100 && pf_fd < 0; i++) {
		const char *dev = nvme_dev_of(pf_bdf);

		if (dev)
			pf_fd = open(dev, O_RDWR);
		if (pf_fd < 0)
			usleep(100000);
	}
	{
		/* and VF1, taken offline by that reset, back to work */
		rc = pf_fd >= 0 ? vf1_online(NULL) : -1;
		reset_ctrl(vf1_bdf, state, sizeof(state));
		ok(!rc && !strncmp(state, "live", 4) && !vf1_write_fd(nsfd, 4100),
		   "VF1 online again and working after the PF's return (rc=%#x state %s)", rc, state);
	}
	close(nsfd);
}

static char **groups;
static int ngroups;

/* no GROUP arguments: every group */
static int want(const char *g)
{
	if (!ngroups)
		return 1;
	for (int i = 0; i < ngroups; i++)
		if (!strcmp(groups[i], g))
			return 1;
	return 0;
}

int main(int argc, char **argv)
{
	char *dev;
	uint8_t id[4096];

	if (argc < 4) {
		fprintf(stderr, "usage: %s PF_BDF VF1_BDF VF2_BDF [GROUP...]\n", argv[0]);
		return 2;
	}
	pf_bdf = argv[1];
	vf1_bdf = argv[2];
	vf2_bdf = argv[3];

	setvbuf(stdout, NULL, _IOLBF, 0);
	dev = nvme_dev_of(pf_bdf);
	if (!dev || (pf_fd = open(dev, O_RDWR)) < 0) {
		printf("1..0 # SKIP no nvme device for PF %s\n", pf_bdf);
		return 1;
	}
	dev = nvme_dev_of(vf1_bdf);
	if (!dev || (vf1_fd = open(dev, O_RDWR)) < 0) {
		printf("1..0 # SKIP no nvme device for VF1 %s\n", vf1_bdf);
		return 1;
	}
	if (!identify(vf1_fd, 1, id))
		vf1_id = le16(id + 78);
	vf2_id = vf1_id + 1;
	diag("PF %s, VF1 %s (cntlid %u), VF2 %s (cntlid %u)", pf_bdf, vf1_bdf, vf1_id, vf2_bdf, vf2_id);

	pf_identity = getenv("LM_PF_IDENTITY") && atoi(getenv("LM_PF_IDENTITY"));
	groups = argv + 4;
	ngroups = argc - 4;
	if (want("identify"))
		t_identify();
	if (want("vf"))
		t_vf_rejects();
	if (want("fields"))
		t_bad_fields();
	if (want("suspend") || want("setstate"))
		t_suspend_get();	/* setstate needs its state */
	if (want("doorbell"))
		t_latched_doorbell();
	if (want("setstate"))
		t_set_state();
	if (want("reset"))
		t_reset_clears();
	if (want("cdq"))
		t_cdq();
	if (want("track"))
		t_track();
	if (want("cross"))
		t_cross_migrate();
	if (want("pc0"))
		t_pc0_migrate();
	if (want("aen"))
		t_aen();	/* last: takes the PF from nvme */

	printf("1..%d\n", test_no);
	printf("# %d passed, %d failed\n", test_no - failed, failed);
	return failed ? 1 : 0;
}
