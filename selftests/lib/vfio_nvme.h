/* SPDX-License-Identifier: GPL-2.0 */
/*
 * A VFIO device opened through its cdev and iommufd, and a minimal polled
 * userspace NVMe driver on top of it, for the nvme_vfio_pci kselftests.
 *
 * Owns: struct nvp_vfio (the iommufd, the IOAS, the device fd, the BAR0
 * mapping) and struct nvp_nvme (queue memory, queue pointers).  Single
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
};

/*
 * IOVA layout under @iova_base (all 4 KiB pages, each its own mapping):
 *   +0x0000 admin SQ   +0x1000 admin CQ   +0x2000 I/O SQ   +0x3000 I/O CQ
 *   +0x4000 identify / scratch buffer    +0x5000 data buffer (write)
 *   +0x6000 data buffer (read)
 */
#define NVP_IOVA_BASE_DEFAULT	0x100000000ull	/* 4 GiB */
#define NVP_IOVA_SPAN		0x7000ull

struct nvp_nvme {
	struct nvp_vfio *v;
	uint64_t iova_base;
	uint64_t cap;
	uint32_t vs;
	uint32_t dstrd;		/* doorbell stride in bytes */
	uint32_t timeout_ms;	/* for enable/disable */
	struct nvp_queue aq, ioq;
	bool ioq_created;
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

/* Identify Controller (fills n->cntlid, n->vid; raw data in n->buf). */
int nvp_nvme_identify_ctrl(struct nvp_nvme *n);
/* Identify Namespace @nsid (fills n->lba_size, n->nsze). */
int nvp_nvme_identify_ns(struct nvp_nvme *n, uint32_t nsid);
/* Set Features Number of Queues (1/1), Create I/O CQ 1 and SQ 1 (polled). */
int nvp_nvme_create_ioq(struct nvp_nvme *n);
/* One-block Write (from wbuf) or Read (into rbuf) on the I/O queue. */
int nvp_nvme_rw(struct nvp_nvme *n, bool write, uint32_t nsid, uint64_t slba);

/* Issue an admin command whose data pointer is @prp1 (tests may pass an unmapped IOVA). */
int nvp_nvme_identify_raw(struct nvp_nvme *n, uint32_t cns, uint32_t nsid, uint64_t prp1);

#endif
