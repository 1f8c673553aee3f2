/* SPDX-License-Identifier: GPL-2.0 */
/*
 * C ABI of rust/glue.c: the few things the Rust side cannot reach through
 * bindgen (static inlines, macros, nvme-core's private layout).
 * Only opaque pointers and plain integers cross this boundary.
 */
#ifndef NVP_GLUE_H
#define NVP_GLUE_H

#include <linux/types.h>

struct pci_dev;
struct nvme_ctrl;
struct rb_root_cached;

/* pci_physfn() (a static inline): the PF of a VF, or the device itself. */
struct pci_dev *nvp_pci_physfn(struct pci_dev *pdev);
/* pdev->is_virtfn (a bitfield). */
bool nvp_pci_is_virtfn(struct pci_dev *pdev);

/*
 * The nvme_ctrl of a PF driven by nvme-pci, found through its "nvme" class
 * child device. Returns it with a device reference held (release with
 * nvp_ctrl_put()), ERR_PTR(-ENODEV) when the PF has no nvme driver or no
 * controller, ERR_PTR(-EOPNOTSUPP) when the controller is not a PCIe one.
 */
struct nvme_ctrl *nvp_pf_ctrl_get(struct pci_dev *pf);
void nvp_ctrl_put(struct nvme_ctrl *ctrl);
/* nvme_ctrl_state(ctrl) == NVME_CTRL_LIVE */
bool nvp_ctrl_live(struct nvme_ctrl *ctrl);
/* The controller's CAP register as read by nvme-core. */
u64 nvp_ctrl_cap(struct nvme_ctrl *ctrl);
/* The controller's instance number (N of /dev/nvmeN). */
int nvp_ctrl_instance(struct nvme_ctrl *ctrl);

/*
 * Submit one admin command on the controller's admin queue and wait.
 * @sqe: the 64-byte submission queue entry as 16 little-endian dwords; the
 *       command identifier and data pointers are filled in by nvme-core.
 * @buf/@len: the data buffer (kernel memory), or NULL/0.
 * @timeout_ms: 0 for nvme-core's admin timeout.
 * Returns 0, a negative errno, or a positive NVMe status (SCT/SC, DNR, MORE).
 * @result receives CQE DW0.
 */
int nvp_ctrl_admin_cmd(struct nvme_ctrl *ctrl, const __le32 *sqe, void *buf,
		       unsigned int len, u32 *result, unsigned int timeout_ms);

/*
 * The IOVA ranges of an interval tree of struct interval_tree_node (the
 * ranges VFIO's log_start gets), in ascending order of start: node i's
 * start goes to out[2 * i] and its last (inclusive) byte to out[2 * i + 1].
 * Stores at most @max nodes; returns how many nodes the tree has. The
 * caller holds whatever keeps the tree alive (VFIO builds it on its stack).
 */
u32 nvp_iova_ranges(struct rb_root_cached *root, u64 *out, u32 max);

#endif /* NVP_GLUE_H */
