/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The VFIO migration uAPI (v2) from userspace: feature query, state
 * changes, and the data fd. Shared by the migration kselftest and the
 * benchmark. Returns 0 or -errno (reads: the length).
 */
#ifndef NVP_VFIO_MIG_H
#define NVP_VFIO_MIG_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "vfio_nvme.h"

/* VFIO_DEVICE_FEATURE_MIGRATION: the device's migration_flags. */
int nvp_mig_flags(struct nvp_vfio *v, uint64_t *flags);
/* Set the migration state; *fd (if given) gets the data fd or -1. */
int nvp_mig_set(struct nvp_vfio *v, uint32_t state, int *fd);
/* Get the migration state. */
int nvp_mig_get(struct nvp_vfio *v, uint32_t *state);
/* VFIO_DEVICE_FEATURE_MIG_DATA_SIZE: the driver's estimate of the stop-copy data. */
int nvp_mig_data_size(struct nvp_vfio *v, uint64_t *len);
/* Read a save fd to its end into a malloc'ed buffer; returns the length. */
ssize_t nvp_mig_read_all(int fd, uint8_t **out);
/* Write a stream to a resume fd, in uneven pieces when @uneven. */
int nvp_mig_write_all(int fd, const uint8_t *buf, size_t len, int uneven);

#endif
