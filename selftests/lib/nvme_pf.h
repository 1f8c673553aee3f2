/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The PF as nvme-pci drives it, for the tests that take it away and give it
 * back: its controller's character device, and the NVMe admin passthrough
 * (NVME_IOCTL_ADMIN_CMD) for the Secondary Controller List and
 * Virtualization Management, to put VFs' resources back after the PF was
 * rebound (the device model takes every secondary controller offline, and
 * its resources away, when the PF's controller is reset).
 *
 * Owns: nothing but the fd nvp_pf_open() returns.  Return convention as
 * pci_sysfs.h: 0 or -errno; a positive NVMe status when the PF completed a
 * command with an error.
 */
#ifndef NVP_NVME_PF_H
#define NVP_NVME_PF_H

#include <stdbool.h>
#include <stdint.h>

/* One Secondary Controller Entry (Identify CNS 15h). */
struct nvp_sec_ctrl {
	uint16_t scid;
	uint16_t pcid;
	bool online;
	uint16_t vfn;
	uint16_t nvq;
	uint16_t nvi;
};

/*
 * Wait up to @timeout_ms for the PF at @bdf to have an nvme controller in
 * state "live"; open its /dev/nvmeN.  Returns the fd or -errno.
 */
int nvp_pf_open(const char *bdf, uint32_t timeout_ms);
/* The PF's Secondary Controller List entry of VF number @vfn (1-based). */
int nvp_pf_sec_ctrl(int fd, uint16_t vfn, struct nvp_sec_ctrl *sc);
/*
 * Give secondary controller @scid @nvq VQ and @nvi VI resources and bring it
 * online: offline, assign VQ, assign VI, online (Virtualization Management).
 */
int nvp_pf_provision(int fd, uint16_t scid, uint16_t nvq, uint16_t nvi);

/* Identify Controller (CNS 01h) of the PF into @buf (4096 bytes). */
int nvp_pf_identify_ctrl(int fd, void *buf);

#endif
