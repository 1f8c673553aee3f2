/* SPDX-License-Identifier: GPL-2.0 */
/*
 * A guest on a VF, as the migration tests see it: blocks of namespace 1
 * stamped with (LBA, generation) written and read back through the
 * userspace driver, the guest's memory given to a destination VF, and one
 * whole save (RUNNING -> STOP -> STOP_COPY, read the data fd) or load
 * (-> RESUMING, write, -> STOP) of the VFIO migration uAPI.
 *
 * Owns: nothing.  Return convention as vfio_nvme.h; nvp_lasterr() says
 * what went wrong.  Thread safe as long as each thread uses its own
 * struct nvp_nvme and the VFs it migrates.
 */
#ifndef NVP_MIG_GUEST_H
#define NVP_MIG_GUEST_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "vfio_nvme.h"

#define NVP_NSID 1	/* the shared namespace every VF sees */

/* Fill @len bytes of @buf with the stamp of block @lba, generation @gen. */
void nvp_stamp(uint8_t *buf, uint32_t len, uint64_t lba, uint32_t gen);
/* Write blocks @lba0 .. @lba0 + @nblk - 1 stamped @gen (on I/O queue 1). */
int nvp_blocks_write(struct nvp_nvme *n, uint64_t lba0, unsigned int nblk, uint32_t gen);
/*
 * Read them back: 0 if every block holds its stamp of @gen, else the first
 * bad block + 1 (nvp_lasterr() says whether the read failed or the data
 * differs).
 */
int nvp_blocks_verify(struct nvp_nvme *n, uint64_t lba0, unsigned int nblk, uint32_t gen);

/*
 * Give @dst the guest's memory (the driver's IOVA span) at the same IOVAs
 * and the bus-master bit the guest set: what a VMM restores itself.
 */
int nvp_guest_map_into(struct nvp_nvme *n, struct nvp_vfio *dst);

/* @v -> STOP -> STOP_COPY, the whole stream read into *@buf (malloc'ed); stays in STOP_COPY. */
ssize_t nvp_mig_save(struct nvp_vfio *v, uint8_t **buf);
/* @v -> RESUMING, @len bytes written (in uneven pieces when @uneven), -> STOP. */
int nvp_mig_load(struct nvp_vfio *v, const uint8_t *buf, size_t len, int uneven);

#endif
