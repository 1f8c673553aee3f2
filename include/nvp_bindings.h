/* SPDX-License-Identifier: GPL-2.0 */
/*
 * bindgen input for nvme_vfio_pci: the VFIO and nvme-core pieces that the
 * kernel crate's own bindings do not cover, plus the C glue's ABI.
 * Kbuild runs bindgen on this file with the module's c_flags, so the types
 * match the exact kernel the module is built against.
 */
#include <linux/anon_inodes.h>
#include <linux/fs.h>
#include <linux/iova_bitmap.h>
#include <linux/pci.h>
#include <linux/vfio.h>
#include <linux/vfio_pci_core.h>

#include "nvp_glue.h"
