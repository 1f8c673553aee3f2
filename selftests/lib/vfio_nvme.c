// SPDX-License-Identifier: GPL-2.0
/*
 * VFIO cdev + iommufd device access and a minimal polled NVMe driver
 * (see vfio_nvme.h).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <linux/iommufd.h>
#include <linux/pci_regs.h>
#include <linux/vfio.h>

#include "vfio_nvme.h"

/* ---------------- VFIO ---------------- */

int nvp_vfio_region_info(struct nvp_vfio *v, uint32_t index, struct vfio_region_info *ri)
{
	memset(ri, 0, sizeof(*ri));
	ri->argsz = sizeof(*ri);
	ri->index = index;
	if (ioctl(v->devfd, VFIO_DEVICE_GET_REGION_INFO, ri)) {
		int e = errno;

		nvp_seterr("VFIO_DEVICE_GET_REGION_INFO(%u): %s", index, strerror(e));
		return -e;
	}
	return 0;
}

static void vfio_reset_fds(struct nvp_vfio *v)
{
	v->iommufd = -1;
	v->devfd = -1;
	v->bar0 = NULL;
	v->bar0_len = 0;
}

int nvp_vfio_open(struct nvp_vfio *v, const char *bdf)
{
	struct iommu_ioas_alloc alloc = { .size = sizeof(alloc) };
	struct vfio_device_bind_iommufd bind = { .argsz = sizeof(bind) };
	struct vfio_device_attach_iommufd_pt attach = { .argsz = sizeof(attach) };
	int ret, e;

	memset(v, 0, sizeof(*v));
	vfio_reset_fds(v);
	snprintf(v->bdf, sizeof(v->bdf), "%s", bdf);

	ret = nvp_vfio_cdev_path(bdf, v->cdev, sizeof(v->cdev));
	if (ret)
		return ret;

	v->iommufd = open("/dev/iommu", O_RDWR | O_CLOEXEC);
	if (v->iommufd < 0) {
		e = errno;
		nvp_seterr("open /dev/iommu: %s", strerror(e));
		goto fail;
	}
	if (ioctl(v->iommufd, IOMMU_IOAS_ALLOC, &alloc)) {
		e = errno;
		nvp_seterr("IOMMU_IOAS_ALLOC: %s", strerror(e));
		goto fail;
	}
	v->ioas_id = alloc.out_ioas_id;

	v->devfd = open(v->cdev, O_RDWR | O_CLOEXEC);
	if (v->devfd < 0) {
		e = errno;
		nvp_seterr("open %s: %s", v->cdev, strerror(e));
		goto fail;
	}
	bind.iommufd = v->iommufd;
	if (ioctl(v->devfd, VFIO_DEVICE_BIND_IOMMUFD, &bind)) {
		e = errno;
		nvp_seterr("VFIO_DEVICE_BIND_IOMMUFD on %s: %s", v->cdev, strerror(e));
		goto fail;
	}
	v->devid = bind.out_devid;
	attach.pt_id = v->ioas_id;
	if (ioctl(v->devfd, VFIO_DEVICE_ATTACH_IOMMUFD_PT, &attach)) {
		e = errno;
		nvp_seterr("VFIO_DEVICE_ATTACH_IOMMUFD_PT(ioas %u): %s", v->ioas_id, strerror(e));
		goto fail;
	}
	v->info.argsz = sizeof(v->info);
	if (ioctl(v->devfd, VFIO_DEVICE_GET_INFO, &v->info)) {
		e = errno;
		nvp_seterr("VFIO_DEVICE_GET_INFO: %s", strerror(e));
		goto fail;
	}
	ret = nvp_vfio_region_info(v, VFIO_PCI_BAR0_REGION_INDEX, &v->bar0_info);
	if (!ret)
		ret = nvp_vfio_region_info(v, VFIO_PCI_CONFIG_REGION_INDEX, &v->cfg_info);
	if (ret) {
		e = -ret;
		goto fail;
	}
	return 0;
fail:
	nvp_vfio_close(v);
	return -e;
}

static void msix_close_efds(struct nvp_vfio *v)
{
	uint32_t i;

	for (i = 0; i < v->nmsix; i++)
		close(v->msix_efd[i]);
	v->nmsix = 0;
}

void nvp_vfio_close(struct nvp_vfio *v)
{
	msix_close_efds(v);	/* closing the device fd disables MSI-X */
	if (v->bar0)
		munmap((void *)v->bar0, v->bar0_len);
	if (v->devfd >= 0)
		close(v->devfd);
	if (v->iommufd >= 0)
		close(v->iommufd);	/* destroys the IOAS and its mappings */
	vfio_reset_fds(v);
}

int nvp_vfio_map_bar0(struct nvp_vfio *v)
{
	void *p;

	if (v->bar0)
		return 0;
	if (!(v->bar0_info.flags & VFIO_REGION_INFO_FLAG_MMAP) || !v->bar0_info.size) {
		nvp_seterr("BAR0 is not mmap-able (flags 0x%x, size 0x%llx)",
			   v->bar0_info.flags, (unsigned long long)v->bar0_info.size);
		return -EINVAL;
	}
	p = mmap(NULL, v->bar0_info.size, PROT_READ | PROT_WRITE, MAP_SHARED, v->devfd,
		 (off_t)v->bar0_info.offset);
	if (p == MAP_FAILED) {
		int e = errno;

		nvp_seterr("mmap BAR0 (0x%llx bytes): %s",
			   (unsigned long long)v->bar0_info.size, strerror(e));
		return -e;
	}
	v->bar0 = p;
	v->bar0_len = v->bar0_info.size;
	return 0;
}

int nvp_cfg_read(struct nvp_vfio *v, uint32_t off, void *buf, size_t len)
{
	ssize_t n = pread(v->devfd, buf, len, (off_t)(v->cfg_info.offset + off));

	if (n != (ssize_t)len) {
		int e = n < 0 ? errno : EIO;

		nvp_seterr("config read @0x%x len %zu: %s", off, len, strerror(e));
		return -e;
	}
	return 0;
}

int nvp_cfg_write(struct nvp_vfio *v, uint32_t off, const void *buf, size_t len)
{
	ssize_t n = pwrite(v->devfd, buf, len, (off_t)(v->cfg_info.offset + off));

	if (n != (ssize_t)len) {
		int e = n < 0 ? errno : EIO;

		nvp_seterr("config write @0x%x len %zu: %s", off, len, strerror(e));
		return -e;
	}
	return 0;
}

int nvp_bus_master(struct nvp_vfio *v, bool on)
{
	uint16_t cmd;
	int ret;

	ret = nvp_cfg_read(v, PCI_COMMAND, &cmd, sizeof(cmd));
	if (ret)
		return ret;
	if (on)
		cmd |= PCI_COMMAND_MASTER | PCI_COMMAND_MEMORY;
	else
		cmd &= (uint16_t)~PCI_COMMAND_MASTER;
	ret = nvp_cfg_write(v, PCI_COMMAND, &cmd, sizeof(cmd));
	if (ret)
		return ret;
	ret = nvp_cfg_read(v, PCI_COMMAND, &cmd, sizeof(cmd));
	if (ret)
		return ret;
	if (!!(cmd & PCI_COMMAND_MASTER) != on) {
		nvp_seterr("PCI_COMMAND bus master did not stick (0x%04x)", cmd);
		return -EIO;
	}
	return 0;
}

int nvp_vfio_reset(struct nvp_vfio *v)
{
	if (ioctl(v->devfd, VFIO_DEVICE_RESET)) {
		int e = errno;

		nvp_seterr("VFIO_DEVICE_RESET: %s", strerror(e));
		return -e;
	}
	return 0;
}

int nvp_vfio_irq_count(struct nvp_vfio *v, uint32_t index, uint32_t *count)
{
	struct vfio_irq_info ii = { .argsz = sizeof(ii), .index = index };

	if (ioctl(v->devfd, VFIO_DEVICE_GET_IRQ_INFO, &ii)) {
		int e = errno;

		nvp_seterr("VFIO_DEVICE_GET_IRQ_INFO(%u): %s", index, strerror(e));
		return -e;
	}
	*count = ii.count;
	return 0;
}

int nvp_vfio_msix_disable(struct nvp_vfio *v)
{
	struct vfio_irq_set is = {
		.argsz = sizeof(is),
		.flags = VFIO_IRQ_SET_DATA_NONE | VFIO_IRQ_SET_ACTION_TRIGGER,
		.index = VFIO_PCI_MSIX_IRQ_INDEX,
	};
	int ret = 0;

	if (v->nmsix && ioctl(v->devfd, VFIO_DEVICE_SET_IRQS, &is)) {
		ret = -errno;
		nvp_seterr("VFIO_DEVICE_SET_IRQS(MSI-X off): %s", strerror(-ret));
	}
	msix_close_efds(v);
	return ret;
}

int nvp_vfio_msix_enable(struct nvp_vfio *v, uint32_t nvec)
{
	struct {
		struct vfio_irq_set is;
		int32_t fd[NVP_MAX_VEC];
	} a;
	uint32_t i;
	int e;

	if (v->nmsix)
		nvp_vfio_msix_disable(v);
	if (!nvec || nvec > NVP_MAX_VEC) {
		nvp_seterr("%u MSI-X vectors: 1..%u handled", nvec, NVP_MAX_VEC);
		return -EINVAL;
	}
	memset(&a, 0, sizeof(a));
	for (i = 0; i < nvec; i++) {
		v->msix_efd[i] = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
		if (v->msix_efd[i] < 0) {
			e = errno;
			nvp_seterr("eventfd: %s", strerror(e));
			msix_close_efds(v);
			return -e;
		}
		v->nmsix = i + 1;
		a.fd[i] = v->msix_efd[i];
	}
	a.is.argsz = sizeof(a.is) + nvec * sizeof(a.fd[0]);
	a.is.flags = VFIO_IRQ_SET_DATA_EVENTFD | VFIO_IRQ_SET_ACTION_TRIGGER;
	a.is.index = VFIO_PCI_MSIX_IRQ_INDEX;
	a.is.start = 0;
	a.is.count = nvec;
	if (ioctl(v->devfd, VFIO_DEVICE_SET_IRQS, &a)) {
		e = errno;
		nvp_seterr("VFIO_DEVICE_SET_IRQS(MSI-X, %u vectors): %s", nvec, strerror(e));
		msix_close_efds(v);
		return -e;
	}
	return 0;
}

uint64_t nvp_vfio_msix_take(struct nvp_vfio *v, uint32_t vec)
{
	uint64_t cnt = 0;

	if (vec >= v->nmsix || read(v->msix_efd[vec], &cnt, sizeof(cnt)) != sizeof(cnt))
		return 0;
	return cnt;
}

int nvp_dma_map(struct nvp_vfio *v, void *va, uint64_t iova, uint64_t len)
{
	struct iommu_ioas_map m = {
		.size = sizeof(m),
		.flags = IOMMU_IOAS_MAP_FIXED_IOVA | IOMMU_IOAS_MAP_READABLE |
			 IOMMU_IOAS_MAP_WRITEABLE,
		.ioas_id = v->ioas_id,
		.user_va = (uintptr_t)va,
		.length = len,
		.iova = iova,
	};

	if (ioctl(v->iommufd, IOMMU_IOAS_MAP, &m)) {
		int e = errno;

		nvp_seterr("IOMMU_IOAS_MAP iova 0x%llx len 0x%llx: %s",
			   (unsigned long long)iova, (unsigned long long)len, strerror(e));
		return -e;
	}
	if (m.iova != iova) {
		nvp_seterr("IOMMU_IOAS_MAP put a FIXED_IOVA mapping at 0x%llx, not 0x%llx",
			   (unsigned long long)m.iova, (unsigned long long)iova);
		return -EINVAL;
	}
	return 0;
}

int nvp_dma_unmap(struct nvp_vfio *v, uint64_t iova, uint64_t len, uint64_t *unmapped)
{
	struct iommu_ioas_unmap u = {
		.size = sizeof(u),
		.ioas_id = v->ioas_id,
		.iova = iova,
		.length = len,
	};

	if (ioctl(v->iommufd, IOMMU_IOAS_UNMAP, &u)) {
		int e = errno;

		nvp_seterr("IOMMU_IOAS_UNMAP iova 0x%llx len 0x%llx: %s",
			   (unsigned long long)iova, (unsigned long long)len, strerror(e));
		return -e;
	}
	if (unmapped)
		*unmapped = u.length;
	return 0;
}

void *nvp_dma_alloc(struct nvp_vfio *v, uint64_t iova, size_t len)
{
	void *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	if (p == MAP_FAILED) {
		nvp_seterr("mmap %zu anonymous bytes: %s", len, strerror(errno));
		return NULL;
	}
	if (nvp_dma_map(v, p, iova, len)) {
		munmap(p, len);
		return NULL;
	}
	return p;
}

void nvp_dma_free(struct nvp_vfio *v, void *va, uint64_t iova, size_t len)
{
	if (!va)
		return;
	if (v->iommufd >= 0)
		nvp_dma_unmap(v, iova, len, NULL);
	munmap(va, len);
}

int nvp_iova_allowed(struct nvp_vfio *v, uint64_t iova, uint64_t len, bool *ok)
{
	struct iommu_ioas_iova_ranges q = { .size = sizeof(q), .ioas_id = v->ioas_id };
	struct iommu_iova_range *r;
	uint32_t i;
	int e;

	*ok = false;
	if (ioctl(v->iommufd, IOMMU_IOAS_IOVA_RANGES, &q) && errno != EMSGSIZE) {
		e = errno;
		nvp_seterr("IOMMU_IOAS_IOVA_RANGES: %s", strerror(e));
		return -e;
	}
	r = calloc(q.num_iovas ? q.num_iovas : 1, sizeof(*r));
	if (!r)
		return -ENOMEM;
	q.allowed_iovas = (uintptr_t)r;
	if (ioctl(v->iommufd, IOMMU_IOAS_IOVA_RANGES, &q)) {
		e = errno;
		nvp_seterr("IOMMU_IOAS_IOVA_RANGES: %s", strerror(e));
		free(r);
		return -e;
	}
	for (i = 0; i < q.num_iovas; i++)
		if (iova >= r[i].start && iova + len - 1 <= r[i].last)
			*ok = true;
	if (!*ok)
		nvp_seterr("IOVA 0x%llx+0x%llx is outside the IOAS's %u allowed ranges",
			   (unsigned long long)iova, (unsigned long long)len, q.num_iovas);
	free(r);
	return 0;
}

/* ---------------- NVMe ---------------- */

uint32_t nvp_reg32(struct nvp_nvme *n, uint32_t off)
{
	return *(volatile uint32_t *)(n->v->bar0 + off);
}

void nvp_wreg32(struct nvp_nvme *n, uint32_t off, uint32_t val)
{
	*(volatile uint32_t *)(n->v->bar0 + off) = val;
}

uint64_t nvp_reg64(struct nvp_nvme *n, uint32_t off)
{
	uint64_t lo = nvp_reg32(n, off), hi = nvp_reg32(n, off + 4);

	return lo | (hi << 32);
}

void nvp_wreg64(struct nvp_nvme *n, uint32_t off, uint64_t val)
{
	nvp_wreg32(n, off, (uint32_t)val);
	nvp_wreg32(n, off + 4, (uint32_t)(val >> 32));
}

static void queue_setup(struct nvp_queue *q, uint16_t qid, uint16_t depth, void *sq,
			void *cq, uint64_t sq_iova, uint64_t cq_iova)
{
	q->qid = qid;
	q->depth = depth;
	q->sq = sq;
	q->cq = cq;
	q->sq_iova = sq_iova;
	q->cq_iova = cq_iova;
}

static void queue_reset(struct nvp_queue *q)
{
	memset(q->sq, 0, NVP_PAGE_SIZE);
	memset((void *)q->cq, 0, NVP_PAGE_SIZE);
	q->sq_tail = 0;
	q->cq_head = 0;
	q->phase = 1;
}

int nvp_nvme_init(struct nvp_nvme *n, struct nvp_vfio *v, uint64_t iova_base)
{
	uint8_t *mem;
	uint16_t depth;
	unsigned int i;
	int ret;

	memset(n, 0, sizeof(*n));
	n->v = v;
	n->iova_base = iova_base;
	ret = nvp_vfio_map_bar0(v);
	if (ret)
		return ret;
	if (v->bar0_len < NVME_REG_DBS + 4 * 4) {
		nvp_seterr("BAR0 too small for NVMe registers (0x%zx)", v->bar0_len);
		return -EINVAL;
	}

	mem = nvp_dma_alloc(v, iova_base, NVP_IOVA_SPAN);
	if (!mem)
		return -ENOMEM;

	n->cap = nvp_reg64(n, NVME_REG_CAP);
	n->vs = nvp_reg32(n, NVME_REG_VS);
	if (n->cap == ~0ull) {
		nvp_seterr("CAP reads all ones: BAR0 not decoding (VF offline?)");
		nvp_dma_free(v, mem, iova_base, NVP_IOVA_SPAN);
		return -EIO;
	}
	if (((n->cap >> 48) & 0xf) != 0) {
		nvp_seterr("CAP.MPSMIN %u: 4 KiB pages not supported",
			   (unsigned int)((n->cap >> 48) & 0xf));
		nvp_dma_free(v, mem, iova_base, NVP_IOVA_SPAN);
		return -EOPNOTSUPP;
	}
	if (!((n->cap >> 37) & 1)) {
		nvp_seterr("CAP.CSS lacks the NVM command set (CAP 0x%llx)",
			   (unsigned long long)n->cap);
		nvp_dma_free(v, mem, iova_base, NVP_IOVA_SPAN);
		return -EOPNOTSUPP;
	}
	n->dstrd = 4u << ((n->cap >> 32) & 0xf);
	n->timeout_ms = (uint32_t)((n->cap >> 24) & 0xff) * 500;
	if (n->timeout_ms < NVP_MIN_TIMEOUT_MS)
		n->timeout_ms = NVP_MIN_TIMEOUT_MS;
	if (NVME_REG_DBS + 4 * n->dstrd > v->bar0_len) {
		nvp_seterr("BAR0 (0x%zx) too small for doorbell stride %u", v->bar0_len, n->dstrd);
		nvp_dma_free(v, mem, iova_base, NVP_IOVA_SPAN);
		return -EINVAL;
	}

	depth = (uint16_t)((n->cap & 0xffff) + 1);	/* MQES is 0's based */
	if (depth > 32)
		depth = 32;
	queue_setup(&n->aq, 0, 32, mem, mem + 0x1000, iova_base, iova_base + 0x1000);
	queue_setup(&n->ioq[0], 1, depth, mem + 0x2000, mem + 0x3000, iova_base + 0x2000,
		    iova_base + 0x3000);
	for (i = 1; i < NVP_MAX_IOQ; i++) {
		size_t off = 0x7000 + 0x2000 * (i - 1);

		queue_setup(&n->ioq[i], (uint16_t)(i + 1), depth, mem + off, mem + off + 0x1000,
			    iova_base + off, iova_base + off + 0x1000);
	}
	n->buf = mem + 0x4000;
	n->wbuf = mem + 0x5000;
	n->rbuf = mem + 0x6000;
	n->buf_iova = iova_base + 0x4000;
	n->wbuf_iova = iova_base + 0x5000;
	n->rbuf_iova = iova_base + 0x6000;
	return 0;
}

void nvp_nvme_fini(struct nvp_nvme *n)
{
	if (n->v && n->aq.sq)
		nvp_dma_free(n->v, n->aq.sq, n->iova_base, NVP_IOVA_SPAN);
	n->aq.sq = NULL;
}

static int wait_rdy(struct nvp_nvme *n, bool rdy)
{
	uint64_t deadline = nvp_now_ms() + n->timeout_ms;
	uint32_t csts;

	for (;;) {
		csts = nvp_reg32(n, NVME_REG_CSTS);
		if (csts == ~0u) {
			nvp_seterr("CSTS reads all ones (device gone or offline)");
			return -EIO;
		}
		if (rdy && (csts & NVME_CSTS_CFS)) {
			nvp_seterr("controller fatal status while enabling (CSTS 0x%x)", csts);
			return -EIO;
		}
		if (!!(csts & NVME_CSTS_RDY) == rdy)
			return 0;
		if (nvp_now_ms() > deadline) {
			nvp_seterr("timeout (%u ms) waiting for CSTS.RDY=%d (CSTS 0x%x, CC 0x%x)",
				   n->timeout_ms, rdy, csts, nvp_reg32(n, NVME_REG_CC));
			return -ETIMEDOUT;
		}
		nvp_sleep_us(1000);
	}
}

int nvp_nvme_disable(struct nvp_nvme *n)
{
	uint32_t cc = nvp_reg32(n, NVME_REG_CC);

	if (cc & NVME_CC_EN)
		nvp_wreg32(n, NVME_REG_CC, cc & ~NVME_CC_EN);
	n->nioq = 0;
	return wait_rdy(n, false);
}

int nvp_nvme_enable(struct nvp_nvme *n)
{
	uint16_t ad = n->aq.depth;
	unsigned int i;
	uint32_t cc;
	int ret;

	ret = nvp_bus_master(n->v, true);
	if (ret)
		return ret;
	ret = nvp_nvme_disable(n);
	if (ret)
		return ret;
	queue_reset(&n->aq);
	for (i = 0; i < NVP_MAX_IOQ; i++)
		queue_reset(&n->ioq[i]);
	nvp_wreg32(n, NVME_REG_AQA, ((uint32_t)(ad - 1) << 16) | (uint32_t)(ad - 1));
	nvp_wreg64(n, NVME_REG_ASQ, n->aq.sq_iova);
	nvp_wreg64(n, NVME_REG_ACQ, n->aq.cq_iova);
	/* IOCQES=4 (16 B), IOSQES=6 (64 B), MPS=0 (4 KiB), CSS=NVM, AMS=RR */
	cc = (4u << 20) | (6u << 16) | NVME_CC_EN;
	__sync_synchronize();
	nvp_wreg32(n, NVME_REG_CC, cc);
	return wait_rdy(n, true);
}

static volatile uint32_t *doorbell(struct nvp_nvme *n, uint16_t qid, bool cq)
{
	return (volatile uint32_t *)(n->v->bar0 + NVME_REG_DBS +
				     (2u * qid + (cq ? 1 : 0)) * n->dstrd);
}

void nvp_nvme_post(struct nvp_nvme *n, struct nvp_queue *q, struct nvme_sqe *sqe)
{
	sqe->cid = q->next_cid++;
	memcpy(&q->sq[q->sq_tail], sqe, sizeof(*sqe));
	q->sq_tail = (uint16_t)((q->sq_tail + 1) % q->depth);
	__sync_synchronize();
	*doorbell(n, q->qid, false) = q->sq_tail;
}

bool nvp_nvme_cq_ready(struct nvp_queue *q)
{
	return (q->cq[q->cq_head].status & 1) == q->phase;
}

int nvp_nvme_reap(struct nvp_nvme *n, struct nvp_queue *q, uint16_t cid,
		  struct nvme_cqe *cqe, uint32_t timeout_ms)
{
	uint64_t deadline = nvp_now_ms() + timeout_ms;
	volatile struct nvme_cqe *c = &q->cq[q->cq_head];
	uint16_t status;

	while (!nvp_nvme_cq_ready(q)) {
		if (nvp_now_ms() > deadline) {
			nvp_seterr("timeout (%u ms) for cid %u on queue %u (CSTS 0x%x)",
				   timeout_ms, cid, q->qid, nvp_reg32(n, NVME_REG_CSTS));
			return -ETIMEDOUT;
		}
		nvp_sleep_us(100);
	}
	__sync_synchronize();
	memcpy(cqe, (const void *)c, sizeof(*cqe));
	if (++q->cq_head == q->depth) {
		q->cq_head = 0;
		q->phase ^= 1;
	}
	*doorbell(n, q->qid, true) = q->cq_head;

	if (cqe->cid != cid) {
		nvp_seterr("completion for cid %u, expected %u (queue %u)", cqe->cid, cid, q->qid);
		return -EPROTO;
	}
	status = (cqe->status >> 1) & 0x7ff;	/* SCT << 8 | SC */
	if (status) {
		nvp_seterr("cid %u on queue %u failed: SCT 0x%x SC 0x%02x", cid, q->qid,
			   status >> 8, status & 0xff);
		return status;
	}
	return 0;
}

int nvp_nvme_submit(struct nvp_nvme *n, struct nvp_queue *q, struct nvme_sqe *sqe,
		    struct nvme_cqe *cqe, uint32_t timeout_ms)
{
	int ret;

	nvp_nvme_post(n, q, sqe);
	ret = nvp_nvme_reap(n, q, sqe->cid, cqe, timeout_ms);
	if (ret) {
		char why[400];

		snprintf(why, sizeof(why), "%s", nvp_lasterr());
		nvp_seterr("opcode 0x%02x: %s", sqe->opc, why);
	}
	return ret;
}

int nvp_nvme_identify_raw(struct nvp_nvme *n, uint32_t cns, uint32_t nsid, uint64_t prp1)
{
	struct nvme_sqe sqe = {
		.opc = 0x06,
		.nsid = nsid,
		.prp1 = prp1,
		.cdw10 = cns,
	};
	struct nvme_cqe cqe;

	return nvp_nvme_submit(n, &n->aq, &sqe, &cqe, NVP_CMD_TIMEOUT_MS);
}

int nvp_nvme_identify_ctrl(struct nvp_nvme *n)
{
	const uint8_t *id = n->buf;
	int ret;

	memset(n->buf, 0, NVP_PAGE_SIZE);
	ret = nvp_nvme_identify_raw(n, 1, 0, n->buf_iova);
	if (ret)
		return ret;
	n->vid = (uint16_t)(id[0] | id[1] << 8);
	n->cntlid = (uint16_t)(id[78] | id[79] << 8);
	return 0;
}

int nvp_nvme_identify_ns(struct nvp_nvme *n, uint32_t nsid)
{
	const uint8_t *id = n->buf;
	uint32_t lbaf, lbads;
	unsigned int fmt;
	int ret;

	memset(n->buf, 0, NVP_PAGE_SIZE);
	ret = nvp_nvme_identify_raw(n, 0, nsid, n->buf_iova);
	if (ret)
		return ret;
	memcpy(&n->nsze, id, sizeof(n->nsze));
	fmt = (id[26] & 0xf) | ((id[26] >> 5) & 0x3) << 4;
	memcpy(&lbaf, id + 128 + 4 * fmt, sizeof(lbaf));
	lbads = (lbaf >> 16) & 0xff;
	if (!n->nsze) {
		nvp_seterr("namespace %u has size 0 (not attached to this controller?)", nsid);
		return -ENODEV;
	}
	if (lbads < 9 || lbads > 12) {
		nvp_seterr("namespace %u: LBA data size 2^%u not handled", nsid, lbads);
		return -EOPNOTSUPP;
	}
	n->lba_size = 1u << lbads;
	return 0;
}

static int admin_cmd(struct nvp_nvme *n, struct nvme_sqe *sqe, uint32_t *dw0)
{
	struct nvme_cqe cqe;
	int ret;

	ret = nvp_nvme_submit(n, &n->aq, sqe, &cqe, NVP_CMD_TIMEOUT_MS);
	if (!ret && dw0)
		*dw0 = cqe.dw0;
	return ret;
}

int nvp_nvme_create_ioqs(struct nvp_nvme *n, uint16_t nq, uint16_t nvec)
{
	uint16_t want = nq ? nq : NVP_MAX_IOQ, got, i;
	struct nvme_sqe sqe;
	uint32_t dw0 = 0;
	int ret;

	if (want > NVP_MAX_IOQ) {
		nvp_seterr("%u I/O queue pairs asked for, at most %u handled", want, NVP_MAX_IOQ);
		return -EINVAL;
	}
	n->nioq = 0;
	for (i = 0; i < NVP_MAX_IOQ; i++)
		queue_reset(&n->ioq[i]);

	/* Set Features, Number of Queues (0's based); DW0: what was allocated. */
	memset(&sqe, 0, sizeof(sqe));
	sqe.opc = 0x09;
	sqe.cdw10 = 0x07;
	sqe.cdw11 = ((uint32_t)(want - 1) << 16) | (uint32_t)(want - 1);
	ret = admin_cmd(n, &sqe, &dw0);
	if (ret)
		return ret;
	got = (uint16_t)((dw0 & 0xffff) < (dw0 >> 16) ? (dw0 & 0xffff) : (dw0 >> 16)) + 1;
	if (!nq)
		want = got < want ? got : want;
	else if (got < want) {
		nvp_seterr("%u I/O queue pairs asked for, the controller allocated %u "
			   "(NSQA %u, NCQA %u)", want, got, (dw0 & 0xffff) + 1, (dw0 >> 16) + 1);
		return -ENOSPC;
	}

	for (i = 0; i < want; i++) {
		struct nvp_queue *q = &n->ioq[i];
		uint32_t qsize = (uint32_t)(q->depth - 1) << 16;

		q->ien = nvec != 0;
		q->iv = nvec ? q->qid % nvec : 0;
		/* Create I/O Completion Queue: PC=1, IEN and IV as asked. */
		memset(&sqe, 0, sizeof(sqe));
		sqe.opc = 0x05;
		sqe.prp1 = q->cq_iova;
		sqe.cdw10 = qsize | q->qid;
		sqe.cdw11 = ((uint32_t)q->iv << 16) | (q->ien ? 2u : 0u) | 1u;
		ret = admin_cmd(n, &sqe, NULL);
		if (ret)
			return ret;

		/* Create I/O Submission Queue bound to that CQ, PC=1. */
		memset(&sqe, 0, sizeof(sqe));
		sqe.opc = 0x01;
		sqe.prp1 = q->sq_iova;
		sqe.cdw10 = qsize | q->qid;
		sqe.cdw11 = ((uint32_t)q->qid << 16) | 1u;
		ret = admin_cmd(n, &sqe, NULL);
		if (ret)
			return ret;
		n->nioq = i + 1;
	}
	return 0;
}

int nvp_nvme_create_ioq(struct nvp_nvme *n)
{
	return nvp_nvme_create_ioqs(n, 1, 0);
}

int nvp_nvme_bringup(struct nvp_nvme *n, struct nvp_vfio *v, uint64_t iova_base, uint32_t nsid)
{
	int ret = nvp_nvme_init(n, v, iova_base);

	if (!ret)
		ret = nvp_nvme_enable(n);
	if (!ret)
		ret = nvp_nvme_identify_ctrl(n);
	if (!ret)
		ret = nvp_nvme_identify_ns(n, nsid);
	if (!ret)
		ret = nvp_nvme_create_ioq(n);
	return ret;
}

void nvp_nvme_rw_sqe(struct nvme_sqe *sqe, bool write, uint32_t nsid, uint64_t slba,
		     uint64_t iova)
{
	memset(sqe, 0, sizeof(*sqe));
	sqe->opc = write ? 0x01 : 0x02;
	sqe->nsid = nsid;
	sqe->prp1 = iova;
	sqe->cdw10 = (uint32_t)slba;
	sqe->cdw11 = (uint32_t)(slba >> 32);
	sqe->cdw12 = 0;	/* NLB, 0's based: one block */
}

int nvp_nvme_rw_q(struct nvp_nvme *n, struct nvp_queue *q, bool write, uint32_t nsid,
		  uint64_t slba, uint64_t iova)
{
	struct nvme_sqe sqe;
	struct nvme_cqe cqe;

	if (q->qid < 1 || q->qid > n->nioq) {
		nvp_seterr("I/O queue %u not created (%u exist)", q->qid, n->nioq);
		return -EINVAL;
	}
	if (!n->lba_size || n->lba_size > NVP_PAGE_SIZE) {
		nvp_seterr("LBA size unknown or above one page (%u)", n->lba_size);
		return -EINVAL;
	}
	nvp_nvme_rw_sqe(&sqe, write, nsid, slba, iova);
	return nvp_nvme_submit(n, q, &sqe, &cqe, NVP_CMD_TIMEOUT_MS);
}

int nvp_nvme_rw(struct nvp_nvme *n, bool write, uint32_t nsid, uint64_t slba)
{
	return nvp_nvme_rw_q(n, &n->ioq[0], write, nsid, slba, write ? n->wbuf_iova : n->rbuf_iova);
}

int nvp_nvme_identify_res(struct nvp_nvme *n, uint16_t *nvq, uint16_t *nvi)
{
	const uint8_t *id = n->buf;
	int ret;

	memset(n->buf, 0, NVP_PAGE_SIZE);
	ret = nvp_nvme_identify_raw(n, 0x14, 0, n->buf_iova);
	if (ret)
		return ret;
	/* Primary Controller Capabilities: VQPRT at byte 42, VIPRT at byte 74. */
	*nvq = (uint16_t)(id[42] | id[43] << 8);
	*nvi = (uint16_t)(id[74] | id[75] << 8);
	return 0;
}

int nvp_nvme_map_into(struct nvp_nvme *n, struct nvp_vfio *dst)
{
	int ret = nvp_dma_map(dst, n->aq.sq, n->iova_base, NVP_IOVA_SPAN);

	return ret == -EEXIST ? 0 : ret;
}
