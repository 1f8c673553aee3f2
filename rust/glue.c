// SPDX-License-Identifier: GPL-2.0
/*
 * C glue for nvme_vfio_pci: static inlines, macros and nvme-core's private
 * layout (drivers/nvme/host/nvme.h), behind the narrow ABI of
 * include/nvp_glue.h. No policy lives here; the Rust side owns locking,
 * fencing and every decision.
 */
#include <linux/blk-mq.h>
#include <linux/device.h>
#include <linux/err.h>
#include <linux/interval_tree.h>
#include <linux/pci.h>
#include <linux/string.h>

#include "nvme.h"
#include "nvp_glue.h"

struct pci_dev *nvp_pci_physfn(struct pci_dev *pdev)
{
	return pci_physfn(pdev);
}

bool nvp_pci_is_virtfn(struct pci_dev *pdev)
{
	return pdev->is_virtfn;
}

static int nvp_match_nvme_class(struct device *dev, const void *data)
{
	return dev->class && !strcmp(dev->class->name, "nvme");
}

struct nvme_ctrl *nvp_pf_ctrl_get(struct pci_dev *pf)
{
	struct device_driver *drv = READ_ONCE(pf->dev.driver);
	struct nvme_ctrl *ctrl;
	struct device *cdev;

	if (!drv || strcmp(drv->name, "nvme"))
		return ERR_PTR(-ENODEV);
	cdev = device_find_child(&pf->dev, NULL, nvp_match_nvme_class);
	if (!cdev)
		return ERR_PTR(-ENODEV);
	ctrl = dev_get_drvdata(cdev);
	if (!ctrl || !ctrl->ops || strcmp(ctrl->ops->name, "pcie")) {
		put_device(cdev);
		return ERR_PTR(-EOPNOTSUPP);
	}
	/* The reference taken by device_find_child() is ctrl->device's. */
	return ctrl;
}

void nvp_ctrl_put(struct nvme_ctrl *ctrl)
{
	nvme_put_ctrl(ctrl);
}

bool nvp_ctrl_live(struct nvme_ctrl *ctrl)
{
	return nvme_ctrl_state(ctrl) == NVME_CTRL_LIVE;
}

u64 nvp_ctrl_cap(struct nvme_ctrl *ctrl)
{
	return ctrl->cap;
}

int nvp_ctrl_instance(struct nvme_ctrl *ctrl)
{
	return ctrl->instance;
}

int nvp_ctrl_admin_cmd(struct nvme_ctrl *ctrl, const __le32 *sqe, void *buf,
		       unsigned int len, u32 *result, unsigned int timeout_ms)
{
	union nvme_result res = { };
	struct nvme_command cmd;
	struct request *req;
	int ret;

	BUILD_BUG_ON(sizeof(cmd) != 64);
	if (!nvp_ctrl_live(ctrl))
		return -ENODEV;
	memcpy(&cmd, sqe, sizeof(cmd));
	cmd.common.command_id = 0;
	memset(&cmd.common.dptr, 0, sizeof(cmd.common.dptr));

	if (!timeout_ms) {
		ret = __nvme_submit_sync_cmd(ctrl->admin_q, &cmd, &res, buf, len,
					     NVME_QID_ANY, 0);
	} else {
		req = blk_mq_alloc_request(ctrl->admin_q,
					   nvme_is_write(&cmd) ? REQ_OP_DRV_OUT : REQ_OP_DRV_IN,
					   0);
		if (IS_ERR(req))
			return PTR_ERR(req);
		nvme_init_request(req, &cmd);
		req->timeout = msecs_to_jiffies(timeout_ms);
		if (buf && len) {
			ret = blk_rq_map_kern(req, buf, len, GFP_KERNEL);
			if (ret) {
				blk_mq_free_request(req);
				return ret;
			}
		}
		ret = nvme_execute_rq(req, false);
		res = nvme_req(req)->result;
		blk_mq_free_request(req);
	}
	if (result)
		*result = le32_to_cpu(res.u32);
	return ret;
}

u32 nvp_iova_ranges(struct rb_root_cached *root, u64 *out, u32 max)
{
	struct interval_tree_node *node;
	u32 n = 0;

	for (node = interval_tree_iter_first(root, 0, ULONG_MAX); node;
	     node = interval_tree_iter_next(node, 0, ULONG_MAX)) {
		if (n < max) {
			out[2 * n] = node->start;
			out[2 * n + 1] = node->last;
		}
		n++;
	}
	return n;
}
