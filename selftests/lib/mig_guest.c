// SPDX-License-Identifier: GPL-2.0
/* A guest's data and one save or load of a VF (see mig_guest.h). */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "mig_guest.h"
#include "vfio_mig.h"

void nvp_stamp(uint8_t *buf, uint32_t len, uint64_t lba, uint32_t gen)
{
	uint64_t x = (lba + 1) * 0x9e3779b97f4a7c15ull ^ gen;
	uint32_t i;

	snprintf((char *)buf, len, "NVPMIG lba=%llu gen=%u;", (unsigned long long)lba, gen);
	for (i = 32; i < len; i++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		buf[i] = (uint8_t)x;
	}
}

int nvp_blocks_write(struct nvp_nvme *n, uint64_t lba0, unsigned int nblk, uint32_t gen)
{
	unsigned int i;
	int ret;

	for (i = 0; i < nblk; i++) {
		nvp_stamp(n->wbuf, n->lba_size, lba0 + i, gen);
		ret = nvp_nvme_rw(n, true, NVP_NSID, lba0 + i);
		if (ret)
			return ret;
	}
	return 0;
}

int nvp_blocks_verify(struct nvp_nvme *n, uint64_t lba0, unsigned int nblk, uint32_t gen)
{
	uint8_t want[NVP_PAGE_SIZE];
	unsigned int i;

	for (i = 0; i < nblk; i++) {
		memset(n->rbuf, 0x5a, NVP_PAGE_SIZE);
		if (nvp_nvme_rw(n, false, NVP_NSID, lba0 + i))
			return i + 1;
		nvp_stamp(want, n->lba_size, lba0 + i, gen);
		if (memcmp(want, n->rbuf, n->lba_size)) {
			nvp_seterr("LBA %llu does not hold generation %u",
				   (unsigned long long)(lba0 + i), gen);
			return i + 1;
		}
	}
	return 0;
}

int nvp_guest_map_into(struct nvp_nvme *n, struct nvp_vfio *dst)
{
	int ret = nvp_nvme_map_into(n, dst);

	return ret ? ret : nvp_bus_master(dst, true);
}

ssize_t nvp_mig_save(struct nvp_vfio *v, uint8_t **buf)
{
	uint32_t st = ~0u;
	ssize_t len;
	int fd, ret;

	ret = nvp_mig_set(v, VFIO_DEVICE_STATE_STOP, NULL);
	if (!ret)
		ret = nvp_mig_get(v, &st);
	if (ret || st != VFIO_DEVICE_STATE_STOP) {
		nvp_seterr("%s: -> STOP: %s (state %u)", v->bdf, strerror(-ret), st);
		return ret ? ret : -EPROTO;
	}
	ret = nvp_mig_set(v, VFIO_DEVICE_STATE_STOP_COPY, &fd);
	if (ret || fd < 0) {
		nvp_seterr("%s: STOP -> STOP_COPY: %s", v->bdf, ret ? strerror(-ret) : "no data fd");
		return ret ? ret : -EBADF;
	}
	len = nvp_mig_read_all(fd, buf);
	close(fd);
	if (len < 0)
		nvp_seterr("%s: reading the save file: %s", v->bdf, strerror((int)-len));
	return len;
}

int nvp_mig_load(struct nvp_vfio *v, const uint8_t *buf, size_t len, int uneven)
{
	int fd, ret;

	ret = nvp_mig_set(v, VFIO_DEVICE_STATE_RESUMING, &fd);
	if (ret)
		return ret;
	if (fd < 0)
		return -EBADF;
	ret = nvp_mig_write_all(fd, buf, len, uneven);
	close(fd);
	if (ret)
		return ret;
	return nvp_mig_set(v, VFIO_DEVICE_STATE_STOP, NULL);
}
