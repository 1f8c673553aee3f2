// SPDX-License-Identifier: GPL-2.0
/* The VFIO migration uAPI from userspace (see vfio_mig.h). */
#define _GNU_SOURCE
#include <errno.h>
#include <stdlib.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <linux/vfio.h>

#include "vfio_mig.h"

int nvp_mig_flags(struct nvp_vfio *v, uint64_t *flags)
{
	struct {
		struct vfio_device_feature f;
		struct vfio_device_feature_migration m;
	} a = { .f = { .argsz = sizeof(a), .flags = VFIO_DEVICE_FEATURE_GET |
			VFIO_DEVICE_FEATURE_MIGRATION } };

	if (ioctl(v->devfd, VFIO_DEVICE_FEATURE, &a))
		return -errno;
	*flags = a.m.flags;
	return 0;
}

int nvp_mig_set(struct nvp_vfio *v, uint32_t state, int *fd)
{
	struct {
		struct vfio_device_feature f;
		struct vfio_device_feature_mig_state s;
	} a = { .f = { .argsz = sizeof(a), .flags = VFIO_DEVICE_FEATURE_SET |
			VFIO_DEVICE_FEATURE_MIG_DEVICE_STATE },
		.s = { .device_state = state, .data_fd = -1 } };

	if (fd)
		*fd = -1;
	if (ioctl(v->devfd, VFIO_DEVICE_FEATURE, &a))
		return -errno;
	if (fd)
		*fd = a.s.data_fd;
	else if (a.s.data_fd >= 0)
		close(a.s.data_fd);
	return 0;
}

int nvp_mig_get(struct nvp_vfio *v, uint32_t *state)
{
	struct {
		struct vfio_device_feature f;
		struct vfio_device_feature_mig_state s;
	} a = { .f = { .argsz = sizeof(a), .flags = VFIO_DEVICE_FEATURE_GET |
			VFIO_DEVICE_FEATURE_MIG_DEVICE_STATE } };

	if (ioctl(v->devfd, VFIO_DEVICE_FEATURE, &a))
		return -errno;
	*state = a.s.device_state;
	return 0;
}

int nvp_mig_data_size(struct nvp_vfio *v, uint64_t *len)
{
	struct {
		struct vfio_device_feature f;
		struct vfio_device_feature_mig_data_size d;
	} a = { .f = { .argsz = sizeof(a), .flags = VFIO_DEVICE_FEATURE_GET |
			VFIO_DEVICE_FEATURE_MIG_DATA_SIZE } };

	if (ioctl(v->devfd, VFIO_DEVICE_FEATURE, &a))
		return -errno;
	*len = a.d.stop_copy_length;
	return 0;
}

ssize_t nvp_mig_read_all(int fd, uint8_t **out)
{
	size_t cap = 1 << 16, len = 0;
	uint8_t *buf = malloc(cap);
	ssize_t r;

	if (!buf)
		return -ENOMEM;
	for (;;) {
		if (len == cap) {
			uint8_t *nb = realloc(buf, cap *= 2);

			if (!nb) {
				free(buf);
				return -ENOMEM;
			}
			buf = nb;
		}
		r = read(fd, buf + len, cap - len);
		if (r < 0) {
			free(buf);
			return -errno;
		}
		if (r == 0)
			break;
		len += r;
	}
	*out = buf;
	return len;
}

int nvp_mig_write_all(int fd, const uint8_t *buf, size_t len, int uneven)
{
	size_t off = 0, piece = uneven ? 7 : len;

	while (off < len) {
		size_t n = piece < len - off ? piece : len - off;
		ssize_t w = write(fd, buf + off, n);

		if (w < 0)
			return -errno;
		off += w;
		if (uneven)
			piece = piece * 3 + 1;
	}
	return 0;
}
