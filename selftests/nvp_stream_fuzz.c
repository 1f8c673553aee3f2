// SPDX-License-Identifier: GPL-2.0
/*
 * Migration-stream fuzzing through the VFIO uAPI, in the VM: a guest (the
 * userspace driver, admin queue and every I/O queue pair its VF has
 * resources for) runs on one VF; its stream is captured (RUNNING -> STOP ->
 * STOP_COPY); then thousands of malformed variants of it are written into
 * the resume file of each VF (STOP -> RESUMING, write, RESUMING -> STOP),
 * one thread per VF, the VFs fuzzed at the same time through the one PF.
 * Every variant must be refused (the write or the RESUMING -> STOP step
 * fails); the VF is then reset (it is left in RESUMING) and must be
 * RUNNING again. Every NVP_FUZZ_EVERY variants and at the end, the pristine
 * stream is migrated onto the other VF (the control: it must load) and the
 * guest's stamped blocks must read back there, and new ones be written.
 *
 * Variants (Documentation/migration-stream.rst; what the driver refuses is
 * rust/protocol/stream.rs and dest.rs, what the device refuses is the
 * device model's Set Controller State check):
 *   random      random bytes (half of them behind the stream's own header)
 *   trunc-sec   truncated at every section boundary (and one byte either side)
 *   trunc-rand  truncated at a random point
 *   trailing    extended with 1..4096 bytes of junk
 *   bitflip     1..3 bit flips (CRC-32C catches every such error here)
 *   burst       1..4 consecutive bytes replaced
 * and, with the CRC-32C recomputed so that the semantic check is what is
 * tested:
 *   header      magic, version, header length, flags, reserved, total
 *               length, section count
 *   section     section length and type, non-zero padding, END reserved,
 *               duplicate, missing, unknown critical and misplaced END
 *               sections, vendor section UUID not the identity's
 *   identity    PCI IDs, highest QID and vectors not those of the state,
 *               reserved bytes, MDTS above the destination's, vendor state
 *               UUID unknown
 *   state-hdr   Controller State version, sizes (NVMECSS, VSS, their upper
 *               halves, the queue counts), NVMe state version and reserved
 *   resources   a QID at or past the destination's VQ, more queue pairs
 *               than its VQ, an interrupt vector past its VI
 *   queues      QID 0 or duplicate, SQ's CQID absent, size 0 or past
 *               CAP.MQES, head or tail past the size, PRP1 not page
 *               aligned, not physically contiguous (device-checked)
 * Nothing legitimately acceptable is generated (section flags of known
 * sections, unknown non-critical sections, SCID, VQ/VI in use, CSATTR and
 * PRP1 values are not checked by design and are left alone).
 *
 * Environment: NVP_VF, NVP_VF2 (nvp_common.h); NVP_FUZZ_STREAMS (default
 * 2000), NVP_FUZZ_SECONDS (time bound, default 150), NVP_FUZZ_EVERY
 * (default 250), NVP_FUZZ_SEED.
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
#include "lib/nvme_pf.h"
#include "lib/vfio_mig.h"

#define NBLK		8
#define NVF		2
#define MAX_SECS	16
#define SLACK		(64 * 1024)	/* room for grown variants */

/* Stream layout (Documentation/migration-stream.rst). */
#define HDR_LEN		32
#define SEC_HDR		8
#define ID_LEN		48
#define SEC_IDENTITY	1
#define SEC_NVME_STATE	2
#define SEC_VENDOR	3
#define SEC_END		0xffff
#define SEC_CRITICAL	1
/* TP4159 Controller State: 48-byte header, NVMe state (8 + 24 per queue). */
#define CS_HDR		48
#define NS_HDR		8
#define QE_LEN		24

static const uint8_t vendor_state_uuid[16] = {
	0x21, 0xb9, 0xd2, 0x7c, 0xda, 0x25, 0x45, 0x45,
	0xbf, 0x2a, 0x6f, 0xad, 0x28, 0x25, 0x56, 0x5e,
};

enum cat {
	C_RANDOM, C_TRUNC_SEC, C_TRUNC_RAND, C_TRAILING, C_BITFLIP, C_BURST,
	C_HEADER, C_SECTION, C_IDENTITY, C_STATE_HDR, C_RESOURCES, C_QUEUES, NCAT
};

static const char *const cat_name[NCAT] = {
	"random", "trunc-sec", "trunc-rand", "trailing", "bitflip", "burst",
	"header", "section", "identity", "state-hdr", "resources", "queues",
};

/* ---- little endian, CRC-32C ---- */

static uint16_t g16(const uint8_t *p) { return p[0] | p[1] << 8; }
static uint32_t g32(const uint8_t *p) { return g16(p) | (uint32_t)g16(p + 2) << 16; }
static uint64_t g64(const uint8_t *p) { return g32(p) | (uint64_t)g32(p + 4) << 32; }
static void p16(uint8_t *p, uint16_t v) { p[0] = v; p[1] = v >> 8; }
static void p32(uint8_t *p, uint32_t v) { p16(p, v); p16(p + 2, v >> 16); }
static void p64(uint8_t *p, uint64_t v) { p32(p, v); p32(p + 4, v >> 32); }

static uint32_t crc32c(const uint8_t *d, size_t n)
{
	uint32_t c = ~0u;
	int k;

	while (n--) {
		c ^= *d++;
		for (k = 0; k < 8; k++)
			c = c & 1 ? 0x82f63b78 ^ (c >> 1) : c >> 1;
	}
	return ~c;
}

static uint64_t rnd(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

/* A u16 other than @v. */
static uint16_t other16(uint64_t *s, uint16_t v)
{
	uint16_t r = (uint16_t)rnd(s);

	return r == v ? (uint16_t)(v ^ 0x8001) : r;
}

/* ---- the pristine stream, taken apart ---- */

struct sec {
	uint16_t ty, fl;
	uint32_t len;
	size_t off;		/* of the section header */
};

struct pristine {
	const uint8_t *b;
	size_t len;
	struct sec s[MAX_SECS];
	int nsec;
	int i_id, i_state, i_end;	/* indexes in s[] */
	const uint8_t *id, *state;
	size_t state_len;
	uint16_t niosq, niocq;
	size_t bound[4 * MAX_SECS * 3 + 8];	/* truncation points at section boundaries */
	int nbound;
	/* The destinations' resources (the largest of the VFs') and CAP.MQES. */
	uint16_t nvq, nvi, mqes;
};

static size_t pad8(size_t n) { return (n + 7) & ~(size_t)7; }

static const char *take_apart(struct pristine *p, const uint8_t *b, size_t len)
{
	size_t off = HDR_LEN, cand[3 * MAX_SECS + 4];
	int i, j, nc = 0;

	memset(p->s, 0, sizeof(p->s));
	p->b = b;
	p->len = len;
	p->nsec = 0;
	p->i_id = p->i_state = p->i_end = -1;
	if (len < HDR_LEN + SEC_HDR + 8 || memcmp(b, "NVMEVFMS", 8) || g64(b + 16) != len)
		return "header";
	while (off + SEC_HDR <= len && p->nsec < MAX_SECS) {
		struct sec *s = &p->s[p->nsec];

		s->off = off;
		s->ty = g16(b + off);
		s->fl = g16(b + off + 2);
		s->len = g32(b + off + 4);
		if (off + SEC_HDR + pad8(s->len) > len)
			return "section length";
		if (s->ty == SEC_IDENTITY)
			p->i_id = p->nsec;
		else if (s->ty == SEC_NVME_STATE)
			p->i_state = p->nsec;
		else if (s->ty == SEC_END)
			p->i_end = p->nsec;
		p->nsec++;
		off += SEC_HDR + pad8(s->len);
		if (s->ty == SEC_END)
			break;
	}
	if (p->i_id < 0 || p->i_state < 0 || p->i_end != p->nsec - 1 || off != len ||
	    g32(b + 24) != (uint32_t)p->nsec || p->s[p->i_id].len != ID_LEN)
		return "sections";
	if (g32(b + p->s[p->i_end].off + SEC_HDR) != crc32c(b, p->s[p->i_end].off + SEC_HDR))
		return "checksum";
	p->id = b + p->s[p->i_id].off + SEC_HDR;
	p->state = b + p->s[p->i_state].off + SEC_HDR;
	p->state_len = p->s[p->i_state].len;
	if (p->state_len < CS_HDR + NS_HDR ||
	    CS_HDR + 4 * (g64(p->state + 16) + g64(p->state + 32)) != p->state_len)
		return "controller state header";
	p->niosq = g16(p->state + CS_HDR + 2);
	p->niocq = g16(p->state + CS_HDR + 4);
	if (4 * g64(p->state + 16) != NS_HDR + QE_LEN * (size_t)(p->niosq + p->niocq))
		return "NVMe controller state";
	/* Truncation points: every section boundary, and a byte either side. */
	cand[nc++] = HDR_LEN;
	for (i = 0; i < p->nsec; i++) {
		cand[nc++] = p->s[i].off + SEC_HDR;
		cand[nc++] = p->s[i].off + SEC_HDR + p->s[i].len;
		cand[nc++] = p->s[i].off + SEC_HDR + pad8(p->s[i].len);
	}
	cand[nc++] = len - 4;
	p->nbound = 0;
	p->bound[p->nbound++] = 0;
	for (i = 0; i < nc; i++) {
		for (j = -1; j <= 1; j++) {
			size_t t = cand[i] + j;
			int k;

			if (t >= len)
				continue;
			for (k = 0; k < p->nbound && p->bound[k] != t; k++)
				;
			if (k == p->nbound)
				p->bound[p->nbound++] = t;
		}
	}
	return NULL;
}

/* ---- building streams ---- */

struct part {
	uint16_t ty, fl;
	const uint8_t *d;
	uint32_t len;
};

/* Header, @n sections, END with its CRC-32C: what the driver's writer does. */
static size_t build(uint8_t *out, const struct part *pt, int n)
{
	size_t off = HDR_LEN;
	int i;

	memset(out, 0, HDR_LEN);
	for (i = 0; i < n; i++) {
		p16(out + off, pt[i].ty);
		p16(out + off + 2, pt[i].fl);
		p32(out + off + 4, pt[i].len);
		memcpy(out + off + SEC_HDR, pt[i].d, pt[i].len);
		memset(out + off + SEC_HDR + pt[i].len, 0, pad8(pt[i].len) - pt[i].len);
		off += SEC_HDR + pad8(pt[i].len);
	}
	memcpy(out, "NVMEVFMS", 8);
	p16(out + 8, 1);
	p16(out + 10, HDR_LEN);
	p64(out + 16, off + SEC_HDR + 8);
	p32(out + 24, n + 1);
	p16(out + off, SEC_END);
	p16(out + off + 2, SEC_CRITICAL);
	p32(out + off + 4, 8);
	p32(out + off + SEC_HDR, crc32c(out, off + SEC_HDR));
	p32(out + off + SEC_HDR + 4, 0);
	return off + SEC_HDR + 8;
}

/* The pristine stream's sections but END, for build(). */
static int parts_of(const struct pristine *p, struct part *pt)
{
	int i;

	for (i = 0; i < p->nsec - 1; i++) {
		pt[i].ty = p->s[i].ty;
		pt[i].fl = p->s[i].fl;
		pt[i].d = p->b + p->s[i].off + SEC_HDR;
		pt[i].len = p->s[i].len;
	}
	return p->nsec - 1;
}

/* Rebuild with the identity and state replaced by @id and @st. */
static size_t rebuild(const struct pristine *p, uint8_t *out, const uint8_t *id,
		      const uint8_t *st, size_t st_len)
{
	struct part pt[MAX_SECS];
	int n = parts_of(p, pt);

	pt[p->i_id].d = id;
	pt[p->i_state].d = st;
	pt[p->i_state].len = st_len;
	return build(out, pt, n);
}

/* Recompute the END checksum of a stream laid out as the pristine one. */
static void reseal(const struct pristine *p, uint8_t *b)
{
	size_t e = p->s[p->i_end].off + SEC_HDR;

	p32(b + e, crc32c(b, e));
}

/* ---- the NVMe controller state inside a copy of the TP4159 state ---- */

static uint8_t *sqe_at(uint8_t *st, int i) { return st + CS_HDR + NS_HDR + QE_LEN * i; }
static uint8_t *cqe_at(uint8_t *st, int i)
{
	return st + CS_HDR + NS_HDR + QE_LEN * (g16(st + CS_HDR + 2) + i);
}

/* Highest QID and vectors in use, as dest.rs queue_needs(). */
static void needs(uint8_t *st, uint16_t *max_qid, uint16_t *nvec)
{
	int i;

	*max_qid = *nvec = 0;
	for (i = 0; i < g16(st + CS_HDR + 2); i++)
		if (g16(sqe_at(st, i) + 10) > *max_qid)
			*max_qid = g16(sqe_at(st, i) + 10);
	for (i = 0; i < g16(st + CS_HDR + 4); i++) {
		uint8_t *e = cqe_at(st, i);
		uint32_t attr = g32(e + 16);

		if (g16(e + 10) > *max_qid)
			*max_qid = g16(e + 10);
		/* Saturating, as queue_needs(). */
		if ((attr & 2) && (attr >> 16 == 0xffff ? 0xffff : (attr >> 16) + 1) > *nvec)
			*nvec = attr >> 16 == 0xffff ? 0xffff : (attr >> 16) + 1;
	}
}

/* The identity made consistent with @st again. */
static void fix_identity(uint8_t *id, uint8_t *st)
{
	uint16_t q, v;

	needs(st, &q, &v);
	p16(id + 14, q);
	p16(id + 16, v);
}

/*
 * One malformed variant of category @c into @out; returns its length.
 * @k numbers the variant (deterministic walks), @s is its random state.
 */
static size_t mutate(const struct pristine *p, enum cat c, uint64_t k, uint64_t *s, uint8_t *out,
		     uint8_t *id, uint8_t *st)
{
	struct part pt[MAX_SECS + 2];
	size_t len = p->len, i, n;
	int np, sub, j;

	memcpy(out, p->b, p->len);
	memcpy(id, p->id, ID_LEN);
	memcpy(st, p->state, p->state_len);
	switch (c) {
	case C_RANDOM:
		len = rnd(s) % (2 * p->len + 1);
		for (i = 0; i < len; i++)
			out[i] = (uint8_t)rnd(s);
		if (len > HDR_LEN && (k & 1))
			memcpy(out, p->b, HDR_LEN);
		return len;
	case C_TRUNC_SEC:
		return p->bound[(k / NCAT) % p->nbound];
	case C_TRUNC_RAND:
		return rnd(s) % p->len;
	case C_TRAILING:
		n = 1 + rnd(s) % 4096;
		for (i = 0; i < n; i++)
			out[len + i] = (k & 2) ? 0 : (uint8_t)rnd(s);
		return len + n;
	case C_BITFLIP:
		n = 1 + rnd(s) % 3;
		while (n--)
			out[rnd(s) % len] ^= 1 << (rnd(s) % 8);
		if (!memcmp(out, p->b, len))
			out[rnd(s) % len] ^= 0x10;
		return len;
	case C_BURST:
		i = rnd(s) % len;
		n = 1 + rnd(s) % 4;
		for (; n && i < len; n--, i++)
			out[i] = (uint8_t)(p->b[i] + 1 + rnd(s) % 255);
		return len;
	case C_HEADER:
		switch (rnd(s) % 7) {
		case 0: out[rnd(s) % 8] ^= 1 + rnd(s) % 255; break;
		case 1: p16(out + 8, other16(s, 1)); break;
		case 2: p16(out + 10, other16(s, HDR_LEN)); break;
		case 3: p32(out + 12, 1u << (rnd(s) % 32) | (uint32_t)rnd(s)); break;
		case 4: p32(out + 28, 1u << (rnd(s) % 32) | (uint32_t)rnd(s)); break;
		case 5: {
			static const int64_t d[] = { -8, -1, 1, 8, 4096 };
			uint64_t t = (rnd(s) & 1) ? p->len + d[rnd(s) % 5] : rnd(s);

			p64(out + 16, t == p->len ? t + 8 : t);
			break;
		}
		default: p32(out + 24, p->nsec + 1 + rnd(s) % 3 - (rnd(s) & 1) * (2 + rnd(s) % 3));
			if (g32(out + 24) == (uint32_t)p->nsec)
				p32(out + 24, p->nsec + 1);
			break;
		}
		reseal(p, out);
		return len;
	case C_SECTION:
		np = parts_of(p, pt);
		sub = rnd(s) % 9;
		switch (sub) {
		case 0: {	/* the length of IDENTITY, NVME_STATE or END */
			int w[3] = { p->i_id, p->i_state, p->i_end };
			const struct sec *x = &p->s[w[rnd(s) % 3]];
			static const int32_t d[] = { -8, -1, 1, 4, 8 };
			uint32_t l = (rnd(s) & 1) ? x->len + d[rnd(s) % 5] : (uint32_t)rnd(s);

			p32(out + x->off + 4, l == x->len ? l + 1 : l);
			reseal(p, out);
			return len;
		}
		case 1: {	/* the type of IDENTITY, NVME_STATE or END */
			static const uint16_t t[] = { SEC_IDENTITY, SEC_NVME_STATE, SEC_VENDOR, SEC_END };
			int w[3] = { p->i_id, p->i_state, p->i_end };
			const struct sec *x = &p->s[w[rnd(s) % 3]];
			uint16_t ty = (rnd(s) & 1) ? t[rnd(s) % 4] : (uint16_t)rnd(s);

			p16(out + x->off, ty == x->ty ? (uint16_t)(ty ^ 0x40) : ty);
			reseal(p, out);
			return len;
		}
		case 2:		/* non-zero padding, where a section has some */
			for (j = 0; j < p->nsec; j++) {
				const struct sec *x = &p->s[j];

				if (x->len % 8) {
					out[x->off + SEC_HDR + x->len + rnd(s) % (8 - x->len % 8)] =
						1 + rnd(s) % 255;
					reseal(p, out);
					return len;
				}
			}
			/* No padding anywhere: END's reserved word instead. */
			/* fall through */
		case 3:		/* END's reserved word */
			p32(out + len - 4, 1 + (uint32_t)rnd(s) % 0xfffffffe);
			return len;
		case 4:		/* IDENTITY or NVME_STATE twice */
			j = (rnd(s) & 1) ? p->i_id : p->i_state;
			pt[np] = pt[j];
			np++;
			break;
		case 5:		/* IDENTITY or NVME_STATE missing */
			j = (rnd(s) & 1) ? p->i_id : p->i_state;
			memmove(&pt[j], &pt[j + 1], (np - j - 1) * sizeof(pt[0]));
			np--;
			break;
		case 6:		/* an unknown critical section */
			j = rnd(s) % (np + 1);
			memmove(&pt[j + 1], &pt[j], (np - j) * sizeof(pt[0]));
			pt[j] = (struct part){ .ty = 4 + rnd(s) % 0xfffb, .fl = SEC_CRITICAL | rnd(s),
					       .d = st, .len = rnd(s) % 64 };
			np++;
			break;
		case 7:		/* a vendor section whose UUID is not the identity's */
			memcpy(st, id + 32, 16);
			st[rnd(s) % 16] ^= 1 + rnd(s) % 255;
			pt[np++] = (struct part){ .ty = SEC_VENDOR, .fl = rnd(s) & 1, .d = st,
						  .len = 16 + rnd(s) % 32 };
			break;
		default:	/* an END before the last section */
			j = rnd(s) % np;
			memmove(&pt[j + 1], &pt[j], (np - j) * sizeof(pt[0]));
			memset(st, 0, 8);
			pt[j] = (struct part){ .ty = SEC_END, .fl = SEC_CRITICAL, .d = st, .len = 8 };
			np++;
			break;
		}
		return build(out, pt, np);
	case C_IDENTITY:
		switch (rnd(s) % 7) {
		case 0: j = 2 * (rnd(s) % 4); p16(id + j, other16(s, g16(id + j))); break;
		case 1: p16(id + 14, other16(s, g16(id + 14))); break;
		case 2: p16(id + 16, other16(s, g16(id + 16))); break;
		case 3: p16(id + 18, 1 + rnd(s) % 0xffff); break;
		case 4: id[20 + rnd(s) % 4] = 1 + rnd(s) % 255; break;
		case 5:
			if (g64(id + 24)) {	/* the destination's MDTS is the source's */
				p64(id + 24, g64(id + 24) << (1 + rnd(s) % 8));
				break;
			}
			/* No MDTS to exceed: a vendor state UUID instead. */
			/* fall through */
		default:
			for (j = 0; j < 16; j++)
				id[32 + j] = (uint8_t)rnd(s);
			if (!memcmp(id + 32, vendor_state_uuid, 16) || !memcmp(id + 32, "\0\0\0\0", 4))
				id[32] = 0xee;
			break;
		}
		return rebuild(p, out, id, st, p->state_len);
	case C_STATE_HDR:
		n = p->state_len;
		switch (rnd(s) % 9) {
		case 0: p16(st, other16(s, 0)); break;
		case 1: p64(st + 16, g64(st + 16) + 1 + rnd(s) % 64); break;
		case 2: p64(st + 16, g64(st + 16) - 1 - rnd(s) % g64(st + 16)); break;
		case 3: p64(st + 32, g64(st + 32) + 1 + rnd(s) % 64); break;
		case 4: st[24 + rnd(s) % 8] |= 1 + rnd(s) % 255; break;
		case 5: st[40 + rnd(s) % 8] |= 1 + rnd(s) % 255; break;
		case 6: j = 2 + 2 * (rnd(s) & 1); p16(st + CS_HDR + j, other16(s, g16(st + CS_HDR + j))); break;
		case 7: p16(st + CS_HDR + ((rnd(s) & 1) ? 0 : 6), 1 + rnd(s) % 0xffff); break;
		default: n = (rnd(s) & 1) ? n - 4 * (1 + rnd(s) % 2) : n + 4 * (1 + rnd(s) % 2);
			memset(st + p->state_len, 0, 8);
			break;
		}
		return rebuild(p, out, id, st, n);
	case C_RESOURCES:
		n = p->state_len;
		switch (rnd(s) % 3) {
		case 0: {	/* one queue's QID at or past the destination's VQ */
			uint16_t q = p->nvq + rnd(s) % (0x10000 - p->nvq);

			j = rnd(s) % (p->niosq + p->niocq);
			p16((j < p->niosq ? sqe_at(st, j) : cqe_at(st, j - p->niosq)) + 10, q);
			break;
		}
		case 1: {	/* queue pairs up to QID VQ: more than the VQ resources */
			uint16_t q, v, extra;
			size_t sqs = NS_HDR + QE_LEN * p->niosq, rest = p->state_len - CS_HDR - sqs;

			needs(st, &q, &v);
			extra = p->nvq > q ? p->nvq - q : 1;
			extra += rnd(s) % 4;
			/* Room for the new SQ entries, then the CQs and the vendor state. */
			memmove(st + CS_HDR + sqs + QE_LEN * extra, st + CS_HDR + sqs, rest);
			for (j = 0; j < extra; j++) {
				memcpy(sqe_at(st, p->niosq + j), sqe_at(st, 0), QE_LEN);
				p16(sqe_at(st, p->niosq + j) + 10, q + 1 + j);
				p16(sqe_at(st, p->niosq + j) + 12, q + 1 + j);
			}
			p16(st + CS_HDR + 2, p->niosq + extra);
			/* The new CQ entries, at the end of the CQs. */
			rest -= QE_LEN * p->niocq;
			i = (size_t)(cqe_at(st, p->niocq) - st);
			memmove(st + i + QE_LEN * extra, st + i, rest);
			for (j = 0; j < extra; j++) {
				memcpy(cqe_at(st, p->niocq + j), cqe_at(st, 0), QE_LEN);
				p16(cqe_at(st, p->niocq + j) + 10, q + 1 + j);
			}
			p16(st + CS_HDR + 4, p->niocq + extra);
			p64(st + 16, g64(st + 16) + 12 * extra);
			n += 2 * QE_LEN * extra;
			break;
		}
		default: {	/* an interrupt vector past the destination's VI */
			uint8_t *e = cqe_at(st, rnd(s) % p->niocq);
			uint32_t iv = p->nvi + rnd(s) % (0x10000 - p->nvi);

			p32(e + 16, (g32(e + 16) & 0xffff) | 2 | iv << 16);
			break;
		}
		}
		fix_identity(id, st);
		return rebuild(p, out, id, st, n);
	default: {	/* C_QUEUES: what the device's Set Controller State refuses */
		bool sq = (rnd(s) & 1) || !p->niocq;
		int q = sq ? rnd(s) % p->niosq : rnd(s) % p->niocq;
		uint8_t *e = sq ? sqe_at(st, q) : cqe_at(st, q);
		uint32_t size = g16(e + 8) + 1u;

		if (size == 0x10000)	/* no head or tail out of range */
			size = 0xffff;

		switch (rnd(s) % 8) {
		case 0: p16(e + 10, 0); break;
		case 1:
			if (p->niosq > 1) {
				p16(sqe_at(st, (q + 1) % p->niosq) + 10, g16(sqe_at(st, q) + 10));
				break;
			}
			/* fall through */
		case 2:	p16(sqe_at(st, q % p->niosq) + 12, (rnd(s) & 1) ? 0 : p->nvq + rnd(s) % 64); break;
		case 3: p16(e + 8, 0); break;
		case 4:
			if (p->mqes < 0xffff) {
				p16(e + 8, p->mqes + 1 + rnd(s) % (0xffff - p->mqes));
				break;
			}
			/* fall through */
		case 5:	p16(e + (sq ? 16 : 12), size + rnd(s) % (0x10000 - size)); break;
		case 6:	p16(e + (sq ? 18 : 14), size + rnd(s) % (0x10000 - size)); break;
		default:
			if (rnd(s) & 1)
				p64(e, g64(e) | 4 * (1 + rnd(s) % 1023));
			else
				e[sq ? 14 : 16] &= ~1;	/* PC */
			break;
		}
		return rebuild(p, out, id, st, p->state_len);
	}
	}
}

/* ---- the run ---- */

struct stats {
	uint64_t tried[NCAT], at_write[NCAT], at_stop[NCAT], accepted[NCAT];
	uint64_t resets, infra;
	char first_bad[256];
};

struct worker {
	pthread_t th;
	struct nvp_vfio *v;
	const struct pristine *p;
	uint64_t seed, *next, end;	/* variants *next (shared) .. end - 1 */
	uint64_t deadline_ms;
	struct stats st;
	int err;
	char why[256];
};

/* Back to RUNNING after a variant: a reset where the device is not. */
static int recover(struct worker *w)
{
	uint32_t st = ~0u;
	int ret = nvp_mig_get(w->v, &st);

	if (!ret && st == VFIO_DEVICE_STATE_RUNNING)
		return 0;
	ret = nvp_vfio_reset(w->v);
	w->st.resets++;
	if (!ret)
		ret = nvp_mig_get(w->v, &st);
	if (!ret && st != VFIO_DEVICE_STATE_RUNNING)
		ret = nvp_mig_set(w->v, VFIO_DEVICE_STATE_RUNNING, NULL);
	if (!ret)
		ret = nvp_mig_get(w->v, &st);
	if (!ret && st != VFIO_DEVICE_STATE_RUNNING)
		ret = -EPROTO;
	if (ret)
		snprintf(w->why, sizeof(w->why), "%s not RUNNING after a reset (state %u): %s",
			 w->v->bdf, st, strerror(-ret));
	return ret;
}

static void *fuzz_worker(void *arg)
{
	struct worker *w = arg;
	uint8_t *out = malloc(w->p->len + 2 * QE_LEN * (w->p->nvq + 4) + SLACK);
	uint8_t *id = malloc(ID_LEN);
	/* Room for queue pairs up to the destination's VQ, and then some. */
	uint8_t *st = malloc(w->p->state_len + 2 * QE_LEN * (w->p->nvq + 4) + SLACK);
	uint64_t k;

	if (!out || !id || !st) {
		w->err = -ENOMEM;
		goto done;
	}
	/* The source of this round's stream is in STOP: a reset to RUNNING. */
	w->err = recover(w);
	while (!w->err && (k = __atomic_fetch_add(w->next, 1, __ATOMIC_RELAXED)) < w->end &&
	       nvp_now_ms() < w->deadline_ms) {
		enum cat c = k % NCAT;
		uint64_t s = (w->seed ^ (k + 1) * 0x9e3779b97f4a7c15ull) | 1;
		size_t len = mutate(w->p, c, k, &s, out, id, st);
		int fd, ret, wret, sret = -1;

		w->st.tried[c]++;
		ret = nvp_mig_set(w->v, VFIO_DEVICE_STATE_RESUMING, &fd);
		if (ret || fd < 0) {
			snprintf(w->why, sizeof(w->why), "%s: -> RESUMING: %s", w->v->bdf,
				 strerror(-ret));
			w->err = ret ? ret : -EBADF;
			break;
		}
		wret = nvp_mig_write_all(fd, out, len, (k / NCAT) & 1);
		close(fd);
		if (!wret)
			sret = nvp_mig_set(w->v, VFIO_DEVICE_STATE_STOP, NULL);
		if (wret)
			w->st.at_write[c]++;
		else if (sret)
			w->st.at_stop[c]++;
		else if (!w->st.accepted[c]++ && !w->st.first_bad[0])
			snprintf(w->st.first_bad, sizeof(w->st.first_bad),
				 "variant %llu (%s, %zu bytes, seed %llu) accepted by %s",
				 (unsigned long long)k, cat_name[c], len,
				 (unsigned long long)w->seed, w->v->bdf);
		w->err = recover(w);
	}
done:
	free(out);
	free(id);
	free(st);
	return NULL;
}

static uint64_t env_u64(const char *name, uint64_t def)
{
	const char *s = nvp_env(name);

	return s ? strtoull(s, NULL, 0) : def;
}

FIXTURE(fuzz) {
	struct nvp_vfio v[NVF];
	struct nvp_nvme n;
	int host;		/* the VF the guest runs on */
	uint64_t lba0;
	uint32_t gen;
	uint16_t nvq[NVF], nvi[NVF];
};

FIXTURE_SETUP(fuzz)
{
	const char *env[NVF] = { "NVP_VF", "NVP_VF2" };
	const char *pf = nvp_env("NVP_PF");
	int i;

	for (i = 0; i < NVF; i++)
		self->v[i].devfd = self->v[i].iommufd = -1;
	for (i = 0; i < NVF; i++)
		if (!nvp_env(env[i]))
			SKIP(return, "NVP_VF and NVP_VF2 are needed");
	for (i = 0; i < NVF; i++) {
		NVP_ASSERT_BOUND_TO_DRIVER(nvp_env(env[i]));
		ASSERT_EQ(0, nvp_vfio_open(&self->v[i], nvp_env(env[i]))) TH_LOG("%s", nvp_lasterr());
		ASSERT_EQ(0, nvp_vfio_map_bar0(&self->v[i])) TH_LOG("%s", nvp_lasterr());
	}
	NVP_REQUIRE_MIGRATION(&self->v[0]);

	/* The guest: every I/O queue pair the VF has resources for, polled. */
	ASSERT_EQ(0, nvp_nvme_init(&self->n, &self->v[0], NVP_IOVA_BASE_DEFAULT))
		TH_LOG("%s", nvp_lasterr());
	ASSERT_EQ(0, nvp_nvme_enable(&self->n)) TH_LOG("%s", nvp_lasterr());
	ASSERT_EQ(0, nvp_nvme_identify_ctrl(&self->n)) TH_LOG("%s", nvp_lasterr());
	ASSERT_EQ(0, nvp_nvme_identify_ns(&self->n, NVP_NSID)) TH_LOG("%s", nvp_lasterr());
	ASSERT_EQ(0, nvp_nvme_create_ioqs(&self->n, 0, 0)) TH_LOG("%s", nvp_lasterr());
	ASSERT_EQ(0, nvp_nvme_identify_res(&self->n, &self->nvq[0], &self->nvi[0]))
		TH_LOG("%s", nvp_lasterr());
	ASSERT_EQ(0, nvp_guest_map_into(&self->n, &self->v[1])) TH_LOG("%s", nvp_lasterr());
	ASSERT_GT(self->n.nsze, (uint64_t)4096);
	self->lba0 = self->n.nsze / 2 + 1024;
	self->gen = (uint32_t)time(NULL);
	ASSERT_EQ(0, nvp_blocks_write(&self->n, self->lba0, NBLK, self->gen)) TH_LOG("%s", nvp_lasterr());

	/* The other VFs' resources, from the PF (else assume VF1's). */
	for (i = 1; i < NVF; i++) {
		struct nvp_sec_ctrl sc;
		unsigned int vfn;
		int fd = pf ? nvp_pf_open(pf, 5000) : -ENOENT;

		self->nvq[i] = self->nvq[0];
		self->nvi[i] = self->nvi[0];
		if (fd >= 0 && !nvp_pci_vf_number(self->v[i].bdf, &vfn) &&
		    !nvp_pf_sec_ctrl(fd, (uint16_t)vfn, &sc)) {
			self->nvq[i] = sc.nvq;
			self->nvi[i] = sc.nvi;
		}
		if (fd >= 0)
			close(fd);
	}
}

FIXTURE_TEARDOWN(fuzz)
{
	int i;

	for (i = 0; i < NVF; i++)
		if (self->v[i].devfd >= 0 && nvp_mig_set(&self->v[i], VFIO_DEVICE_STATE_RUNNING, NULL))
			nvp_vfio_reset(&self->v[i]);
	if (self->n.v && self->n.v->bar0)
		nvp_nvme_disable(&self->n);
	self->n.v = &self->v[0];
	nvp_nvme_fini(&self->n);
	for (i = 0; i < NVF; i++)
		nvp_vfio_close(&self->v[i]);
}

TEST_F_TIMEOUT(fuzz, malformed_streams_refused_vf_usable, 390)
{
	uint64_t want = env_u64("NVP_FUZZ_STREAMS", 2000), every = env_u64("NVP_FUZZ_EVERY", 250);
	uint64_t secs = env_u64("NVP_FUZZ_SECONDS", 150), seed = env_u64("NVP_FUZZ_SEED", 0);
	uint64_t t0 = nvp_now_ms(), next = 0, done = 0, sum[4] = { 0 };
	struct stats tot = { 0 };
	struct worker w[NVF];
	struct pristine p;
	uint8_t *stream = NULL, *copy;
	uint32_t st;
	int i, c, round = 0, checkpoints = 0;

	if (!seed)
		seed = (uint64_t)time(NULL) * 2654435761u ^ getpid();
	if (!every)
		every = want;
	TH_LOG("seed %llu (NVP_FUZZ_SEED), %llu streams, checkpoint every %llu, at most %llu s",
	       (unsigned long long)seed, (unsigned long long)want, (unsigned long long)every,
	       (unsigned long long)secs);
	p.nvq = self->nvq[0] > self->nvq[1] ? self->nvq[0] : self->nvq[1];
	p.nvi = self->nvi[0] > self->nvi[1] ? self->nvi[0] : self->nvi[1];
	p.mqes = (uint16_t)(self->n.cap & 0xffff);
	TH_LOG("guest: %u I/O queue pairs; VFs: VQ %u/%u, VI %u/%u; MQES %u", self->n.nioq,
	       self->nvq[0], self->nvq[1], self->nvi[0], self->nvi[1], p.mqes);

	for (;;) {
		struct nvp_vfio *from = &self->v[self->host], *to = &self->v[!self->host];
		uint64_t end = done + every < want ? done + every : want;
		ssize_t len = nvp_mig_save(from, &stream);
		const char *bad;
		int ret;

		ASSERT_GT(len, (ssize_t)0) TH_LOG("save: %s", nvp_lasterr());
		ASSERT_EQ(0, nvp_mig_set(from, VFIO_DEVICE_STATE_STOP, NULL));
		bad = take_apart(&p, stream, len);
		ASSERT_EQ(NULL, bad) TH_LOG("the pristine stream (%zd bytes): bad %s", len, bad);
		ASSERT_LT(0, p.niosq) TH_LOG("the source has no I/O queue in its stream");
		if (!round) {
			struct part pt[MAX_SECS];

			/* This test's writer and CRC-32C reproduce the driver's stream. */
			copy = malloc(len + SLACK);
			ASSERT_NE(NULL, copy);
			ASSERT_EQ((size_t)len, build(copy, pt, parts_of(&p, pt)));
			ASSERT_EQ(0, memcmp(copy, stream, len));
			free(copy);
			TH_LOG("pristine stream: %zd bytes, %d sections, %u SQ + %u CQ, %d truncation points",
			       len, p.nsec, p.niosq, p.niocq, p.nbound);
		}

		/* Both VFs fuzzed at once: the source (saved) and the destination. */
		next = done;
		for (i = 0; i < NVF; i++) {
			memset(&w[i], 0, sizeof(w[i]));
			w[i].v = &self->v[i];
			w[i].p = &p;
			w[i].seed = seed;
			w[i].next = &next;
			w[i].end = end;
			w[i].deadline_ms = t0 + secs * 1000;
			ASSERT_EQ(0, pthread_create(&w[i].th, NULL, fuzz_worker, &w[i]));
		}
		for (i = 0; i < NVF; i++) {
			pthread_join(w[i].th, NULL);
			for (c = 0; c < NCAT; c++) {
				tot.tried[c] += w[i].st.tried[c];
				tot.at_write[c] += w[i].st.at_write[c];
				tot.at_stop[c] += w[i].st.at_stop[c];
				tot.accepted[c] += w[i].st.accepted[c];
				done += w[i].st.tried[c];
			}
			tot.resets += w[i].st.resets;
			if (w[i].st.first_bad[0] && !tot.first_bad[0])
				memcpy(tot.first_bad, w[i].st.first_bad, sizeof(tot.first_bad));
		}
		for (i = 0; i < NVF; i++) {
			ASSERT_EQ(0, w[i].err) TH_LOG("fuzzing %s: %s", w[i].v->bdf, w[i].why);
		}

		/* The control: the pristine stream loads, the guest carries on there. */
		ret = nvp_mig_load(to, stream, len, round & 1);
		ASSERT_EQ(0, ret) TH_LOG("checkpoint %d: the pristine stream refused by %s: %s",
					 checkpoints, to->bdf, strerror(-ret));
		free(stream);
		stream = NULL;
		ASSERT_EQ(0, nvp_mig_set(to, VFIO_DEVICE_STATE_RUNNING, NULL));
		ASSERT_EQ(0, nvp_mig_get(to, &st));
		ASSERT_EQ((uint32_t)VFIO_DEVICE_STATE_RUNNING, st);
		self->n.v = to;
		self->host = !self->host;
		ASSERT_EQ(0, nvp_blocks_verify(&self->n, self->lba0, NBLK, self->gen))
			TH_LOG("checkpoint %d on %s: %s", checkpoints, to->bdf, nvp_lasterr());
		ASSERT_EQ(0, nvp_nvme_identify_ctrl(&self->n)) TH_LOG("%s", nvp_lasterr());
		self->gen++;
		ASSERT_EQ(0, nvp_blocks_write(&self->n, self->lba0, NBLK, self->gen))
			TH_LOG("%s", nvp_lasterr());
		ASSERT_EQ(0, nvp_blocks_verify(&self->n, self->lba0, NBLK, self->gen))
			TH_LOG("%s", nvp_lasterr());
		checkpoints++;
		round++;
		if (done >= want || nvp_now_ms() >= t0 + secs * 1000)
			break;
	}

	for (c = 0; c < NCAT; c++) {
		TH_LOG("%-10s tried %5llu  refused at write %5llu, at RESUMING->STOP %5llu, accepted %llu",
		       cat_name[c], (unsigned long long)tot.tried[c],
		       (unsigned long long)tot.at_write[c], (unsigned long long)tot.at_stop[c],
		       (unsigned long long)tot.accepted[c]);
		sum[0] += tot.tried[c];
		sum[1] += tot.at_write[c] + tot.at_stop[c];
		sum[2] += tot.accepted[c];
	}
	TH_LOG("streams %llu in %.1f s, refused %llu, accepted by mistake %llu, device resets %llu, "
	       "pristine stream migrated %d times (%d blocks verified each)",
	       (unsigned long long)sum[0], (nvp_now_ms() - t0) / 1000.0, (unsigned long long)sum[1],
	       (unsigned long long)sum[2], (unsigned long long)tot.resets, checkpoints, 2 * NBLK);
	EXPECT_EQ(0ull, (unsigned long long)sum[2]) TH_LOG("%s", tot.first_bad);
	EXPECT_EQ(sum[0], sum[1]);
	for (c = 0; c < NCAT; c++) {
		EXPECT_LT(0ull, (unsigned long long)tot.tried[c]) TH_LOG("no %s variant tried", cat_name[c]);
	}
}

TEST_HARNESS_MAIN
