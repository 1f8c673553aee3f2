/* SPDX-License-Identifier: GPL-2.0 */
/*
 * A VFIO device opened through its cdev and iommufd, and a minimal polled
 * userspace NVMe driver on top of it, for the nvme_vfio_pci kselftests.
 *
 * Owns: struct nvp_vfio (the iommufd, the IOAS, the device fd, the BAR0
 * mapping, the MSI-X eventfds) and struct nvp_nvme (queue memory, queue
 * pointers).  Single
 * threaded; no locking.  Every wait is bounded: commands time out, and
 * enable/disable wait at most CAP.TO (at least NVP_MIN_TIMEOUT_MS).
 *
 * Return convention: 0 on success, -errno on a system failure or timeout
 * (-ETIMEDOUT), a positive NVMe status (SCT << 8 | SC) when the controller
 * completed a command with an error.  nvp_lasterr() says what happened.
 */
#ifndef NVP_VFIO_NVME_H
#define NVP_VFIO_NVME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <linux/vfio.h>

#include "pci_sysfs.h"

#define NVP_PAGE_SIZE		4096u
#define NVP_MIN_TIMEOUT_MS	5000u	/* TCG guests are slow */
#define NVP_CMD_TIMEOUT_MS	10000u
#define NVP_MAX_VEC		32u	/* MSI-X vectors the library can enable */

struct nvp_vfio {
	char bdf[32];
	char cdev[64];
	int iommufd;
	uint32_t ioas_id;
	int devfd;
	uint32_t devid;
	struct vfio_device_info info;
	struct vfio_region_info bar0_info;
	struct vfio_region_info cfg_info;
	volatile uint8_t *bar0;		/* mmap of BAR0, NULL if not mapped */
	size_t bar0_len;
	int msix_efd[NVP_MAX_VEC];	/* eventfds of the enabled MSI-X vectors */
	uint32_t nmsix;			/* how many (0: MSI-X not enabled) */
};

/*
 * Open @bdf: /dev/iommu, IOMMU_IOAS_ALLOC, open the cdev, BIND_IOMMUFD,
 * ATTACH_IOMMUFD_PT to the new IOAS, GET_INFO, region info of BAR0 and
 * config space.  Does not map BAR0 (nvp_vfio_map_bar0()).  On failure all
 * is released and @v is left closed.
 */
int nvp_vfio_open(struct nvp_vfio *v, const char *bdf);
void nvp_vfio_close(struct nvp_vfio *v);

int nvp_vfio_region_info(struct nvp_vfio *v, uint32_t index, struct vfio_region_info *ri);
int nvp_vfio_map_bar0(struct nvp_vfio *v);

/* Config space through the VFIO config region. */
int nvp_cfg_read(struct nvp_vfio *v, uint32_t off, void *buf, size_t len);
int nvp_cfg_write(struct nvp_vfio *v, uint32_t off, const void *buf, size_t len);
/* Set PCI_COMMAND bus master (and memory) enable. */
int nvp_bus_master(struct nvp_vfio *v, bool on);

/* VFIO_DEVICE_RESET */
int nvp_vfio_reset(struct nvp_vfio *v);

/* VFIO_DEVICE_GET_IRQ_INFO: how many interrupts of @index (VFIO_PCI_*_IRQ_INDEX). */
int nvp_vfio_irq_count(struct nvp_vfio *v, uint32_t index, uint32_t *count);
/*
 * VFIO_DEVICE_SET_IRQS: enable MSI-X vectors 0..@nvec-1, each signalling a
 * fresh non-blocking eventfd (v->msix_efd[]), or disable MSI-X and close them.
 */
int nvp_vfio_msix_enable(struct nvp_vfio *v, uint32_t nvec);
int nvp_vfio_msix_disable(struct nvp_vfio *v);
/* Interrupts signalled on MSI-X vector @vec since the last call (the eventfd count). */
uint64_t nvp_vfio_msix_take(struct nvp_vfio *v, uint32_t vec);

/* IOMMU_IOAS_MAP at a fixed IOVA, and IOMMU_IOAS_UNMAP (@unmapped may be NULL). */
int nvp_dma_map(struct nvp_vfio *v, void *va, uint64_t iova, uint64_t len);
int nvp_dma_unmap(struct nvp_vfio *v, uint64_t iova, uint64_t len, uint64_t *unmapped);
/* Anonymous, zeroed, page-aligned memory mapped at @iova; NULL on error. */
void *nvp_dma_alloc(struct nvp_vfio *v, uint64_t iova, size_t len);
void nvp_dma_free(struct nvp_vfio *v, void *va, uint64_t iova, size_t len);

/* Is [iova, iova + len) inside one of the IOAS's allowed IOVA ranges? */
int nvp_iova_allowed(struct nvp_vfio *v, uint64_t iova, uint64_t len, bool *ok);

/* ---------------- NVMe ---------------- */

/* Controller registers (NVMe base spec, 3.1). */
#define NVME_REG_CAP	0x00
#define NVME_REG_VS	0x08
#define NVME_REG_CC	0x14
#define NVME_REG_CSTS	0x1c
#define NVME_REG_AQA	0x24
#define NVME_REG_ASQ	0x28
#define NVME_REG_ACQ	0x30
#define NVME_REG_DBS	0x1000

#define NVME_CC_EN	(1u << 0)
#define NVME_CSTS_RDY	(1u << 0)
#define NVME_CSTS_CFS	(1u << 1)

struct nvme_sqe {
	uint8_t opc;
	uint8_t flags;
	uint16_t cid;
	uint32_t nsid;
	uint32_t cdw2, cdw3;
	uint64_t mptr;
	uint64_t prp1, prp2;
	uint32_t cdw10, cdw11, cdw12, cdw13, cdw14, cdw15;
};

struct nvme_cqe {
	uint32_t dw0, dw1;
	uint16_t sqhd, sqid;
	uint16_t cid;
	uint16_t status;	/* bit 0: phase tag */
};

struct nvp_queue {
	uint16_t qid;
	uint16_t depth;
	struct nvme_sqe *sq;
	volatile struct nvme_cqe *cq;
	uint64_t sq_iova, cq_iova;
	uint16_t sq_tail;
	uint16_t cq_head;
	uint8_t phase;
	uint16_t next_cid;
	bool ien;		/* CQ created with interrupts enabled ... */
	uint16_t iv;		/* ... on this vector */
};

/* I/O queue pairs the driver can create (QIDs 1..NVP_MAX_IOQ). */
#define NVP_MAX_IOQ		16u

/*
 * IOVA layout under @iova_base, 4 KiB pages in one mapping of NVP_IOVA_SPAN:
 *   +0x0000 admin SQ   +0x1000 admin CQ   +0x2000 I/O SQ 1   +0x3000 I/O CQ 1
 *   +0x4000 identify / scratch buffer    +0x5000 data buffer (write)
 *   +0x6000 data buffer (read)
 *   +0x7000 + 0x2000 * (qid - 2): I/O SQ qid, then I/O CQ qid (qid 2..NVP_MAX_IOQ)
 */
#define NVP_IOVA_BASE_DEFAULT	0x100000000ull	/* 4 GiB */
#define NVP_IOVA_SPAN		(0x7000ull + 0x2000ull * (NVP_MAX_IOQ - 1))

struct nvp_nvme {
	struct nvp_vfio *v;
	uint64_t iova_base;
	uint64_t cap;
	uint32_t vs;
	uint32_t dstrd;		/* doorbell stride in bytes */
	uint32_t timeout_ms;	/* for enable/disable */
	struct nvp_queue aq;
	struct nvp_queue ioq[NVP_MAX_IOQ];	/* ioq[i] has QID i + 1 */
	uint16_t nioq;		/* I/O queue pairs created (0: none) */
	void *buf;		/* scratch (identify) */
	void *wbuf, *rbuf;	/* data */
	uint64_t buf_iova, wbuf_iova, rbuf_iova;
	/* From Identify */
	uint16_t cntlid;
	uint16_t vid;
	uint32_t lba_size;
	uint64_t nsze;
};

/* Map BAR0 if needed, allocate and map the queue memory, read CAP. */
int nvp_nvme_init(struct nvp_nvme *n, struct nvp_vfio *v, uint64_t iova_base);
void nvp_nvme_fini(struct nvp_nvme *n);

uint32_t nvp_reg32(struct nvp_nvme *n, uint32_t off);
void nvp_wreg32(struct nvp_nvme *n, uint32_t off, uint32_t val);
uint64_t nvp_reg64(struct nvp_nvme *n, uint32_t off);
void nvp_wreg64(struct nvp_nvme *n, uint32_t off, uint64_t val);

/* CC.EN=0, wait for CSTS.RDY=0. */
int nvp_nvme_disable(struct nvp_nvme *n);
/* Bus master on, disable, program the admin queue, CC.EN=1, wait CSTS.RDY=1. */
int nvp_nvme_enable(struct nvp_nvme *n);

/* Submit one command on @q and poll for its completion. */
int nvp_nvme_submit(struct nvp_nvme *n, struct nvp_queue *q, struct nvme_sqe *sqe,
		    struct nvme_cqe *cqe, uint32_t timeout_ms);
/*
 * The two halves of nvp_nvme_submit(), for commands left in flight: post
 * @sqe on @q (its CID is set) and ring the SQ tail doorbell; wait for the
 * next completion on @q, consume it and ring the CQ head doorbell (returns
 * as nvp_nvme_submit(), checking the CID against @cid).
 */
void nvp_nvme_post(struct nvp_nvme *n, struct nvp_queue *q, struct nvme_sqe *sqe);
int nvp_nvme_reap(struct nvp_nvme *n, struct nvp_queue *q, uint16_t cid,
		  struct nvme_cqe *cqe, uint32_t timeout_ms);
/* Is a completion waiting at the head of @q's CQ? */
bool nvp_nvme_cq_ready(struct nvp_queue *q);

/* Identify Controller (fills n->cntlid, n->vid; raw data in n->buf). */
int nvp_nvme_identify_ctrl(struct nvp_nvme *n);
/* Identify Namespace @nsid (fills n->lba_size, n->nsze). */
int nvp_nvme_identify_ns(struct nvp_nvme *n, uint32_t nsid);
/* Set Features Number of Queues (1/1), Create I/O CQ 1 and SQ 1 (polled). */
int nvp_nvme_create_ioq(struct nvp_nvme *n);
/*
 * What a guest's driver does first: nvp_nvme_init() at @iova_base, enable,
 * Identify Controller and Namespace @nsid, one I/O queue pair.
 */
int nvp_nvme_bringup(struct nvp_nvme *n, struct nvp_vfio *v, uint64_t iova_base, uint32_t nsid);
/*
 * Set Features Number of Queues, then Create I/O CQ and SQ 1..@nq.  @nq 0:
 * as many as the controller allocates (at most NVP_MAX_IOQ).  @nvec 0:
 * polled CQs (IEN=0); else IEN=1 on vector qid % @nvec, so queues share
 * vectors when there are fewer vectors than queues.  Sets n->nioq; -ENOSPC
 * if the controller allocates fewer than @nq.
 */
int nvp_nvme_create_ioqs(struct nvp_nvme *n, uint16_t nq, uint16_t nvec);
/* One-block Write (from wbuf) or Read (into rbuf) on I/O queue 1. */
int nvp_nvme_rw(struct nvp_nvme *n, bool write, uint32_t nsid, uint64_t slba);
/* One-block Write or Read on @q, data at @iova. */
int nvp_nvme_rw_q(struct nvp_nvme *n, struct nvp_queue *q, bool write, uint32_t nsid,
		  uint64_t slba, uint64_t iova);
/* The Write (0x01) or Read (0x02) SQE of one block at @slba, data at @iova. */
void nvp_nvme_rw_sqe(struct nvme_sqe *sqe, bool write, uint32_t nsid, uint64_t slba,
		     uint64_t iova);

/* Issue an admin command whose data pointer is @prp1 (tests may pass an unmapped IOVA). */
int nvp_nvme_identify_raw(struct nvp_nvme *n, uint32_t cns, uint32_t nsid, uint64_t prp1);
/*
 * Identify Primary Controller Capabilities (CNS 14h) of this controller: on
 * a VF, the VQ and VI resources of its secondary controller (VQPRT, VIPRT).
 */
int nvp_nvme_identify_res(struct nvp_nvme *n, uint16_t *nvq, uint16_t *nvi);
/* Map the driver's whole IOVA span (queues and buffers) into @dst's IOAS at the same IOVAs. */
int nvp_nvme_map_into(struct nvp_nvme *n, struct nvp_vfio *dst);

#endif
