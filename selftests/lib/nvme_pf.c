// SPDX-License-Identifier: GPL-2.0
/* The PF's nvme controller from userspace (see nvme_pf.h). */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <linux/nvme_ioctl.h>

#include "nvme_pf.h"
#include "pci_sysfs.h"

/* The nvmeN child of the PF and its state, if it has one. */
static int pf_ctrl(const char *bdf, char *name, size_t nlen, char *state, size_t slen)
{
	char p[512];
	struct dirent *de;
	DIR *d;
	int ret = -ENOENT;

	snprintf(p, sizeof(p), "/sys/bus/pci/devices/%s/nvme", bdf);
	d = opendir(p);
	if (!d)
		return -ENOENT;
	while ((de = readdir(d))) {
		if (strncmp(de->d_name, "nvme", 4))
			continue;
		snprintf(name, nlen, "%s", de->d_name);
		snprintf(p, sizeof(p), "nvme/%s/state", de->d_name);
		ret = nvp_pci_read_attr(bdf, p, state, slen);
		break;
	}
	closedir(d);
	return ret;
}

int nvp_pf_open(const char *bdf, uint32_t timeout_ms)
{
	uint64_t deadline = nvp_now_ms() + timeout_ms;
	char name[256] = "", state[64] = "", dev[300];
	int fd;

	while (pf_ctrl(bdf, name, sizeof(name), state, sizeof(state)) || strcmp(state, "live")) {
		if (nvp_now_ms() > deadline) {
			nvp_seterr("PF %s: no live nvme controller after %u ms (%s%s%s)", bdf,
				   timeout_ms, name[0] ? name : "no nvme device",
				   state[0] ? " state " : "", state);
			return -ETIMEDOUT;
		}
		nvp_sleep_us(10000);
	}
	snprintf(dev, sizeof(dev), "/dev/%s", name);
	fd = open(dev, O_RDWR | O_CLOEXEC);
	if (fd < 0) {
		int e = errno;

		nvp_seterr("open %s (PF %s): %s", dev, bdf, strerror(e));
		return -e;
	}
	return fd;
}

static int admin(int fd, uint8_t opc, uint32_t cdw10, uint32_t cdw11, void *buf, uint32_t len)
{
	struct nvme_admin_cmd c = {
		.opcode = opc, .cdw10 = cdw10, .cdw11 = cdw11,
		.addr = (uintptr_t)buf, .data_len = len,
	};
	int ret = ioctl(fd, NVME_IOCTL_ADMIN_CMD, &c);

	if (ret < 0) {
		int e = errno;

		nvp_seterr("PF admin opcode 0x%02x (cdw10 0x%x): %s", opc, cdw10, strerror(e));
		return -e;
	}
	if (ret > 0)
		nvp_seterr("PF admin opcode 0x%02x (cdw10 0x%x): NVMe status 0x%x", opc, cdw10,
			   ret);
	return ret;
}

int nvp_pf_identify_ctrl(int fd, void *buf)
{
	return admin(fd, 0x06, 0x01, 0, buf, 4096);
}

int nvp_pf_sec_ctrl(int fd, uint16_t vfn, struct nvp_sec_ctrl *sc)
{
	uint8_t list[4096];
	unsigned int i, num;
	int ret;

	memset(list, 0, sizeof(list));
	/* Identify CNS 15h, from CNTID 0 */
	ret = admin(fd, 0x06, 0x15, 0, list, sizeof(list));
	if (ret)
		return ret;
	num = list[0];
	for (i = 0; i < num && i < 127; i++) {
		const uint8_t *e = list + 32 + 32 * i;

		if ((uint16_t)(e[8] | e[9] << 8) != vfn)
			continue;
		sc->scid = (uint16_t)(e[0] | e[1] << 8);
		sc->pcid = (uint16_t)(e[2] | e[3] << 8);
		sc->online = e[4] & 1;
		sc->vfn = vfn;
		sc->nvq = (uint16_t)(e[10] | e[11] << 8);
		sc->nvi = (uint16_t)(e[12] | e[13] << 8);
		return 0;
	}
	nvp_seterr("no secondary controller for VF %u among the PF's %u", vfn, num);
	return -ENOENT;
}

int nvp_pf_provision(int fd, uint16_t scid, uint16_t nvq, uint16_t nvi)
{
	uint32_t c = (uint32_t)scid << 16;
	int ret;

	/* Virtualization Management: ACT 7 offline, 8 assign (RT 0 VQ, 1 VI), 9 online. */
	ret = admin(fd, 0x1c, c | 7, 0, NULL, 0);
	if (!ret)
		ret = admin(fd, 0x1c, c | 0 << 8 | 8, nvq, NULL, 0);
	if (!ret)
		ret = admin(fd, 0x1c, c | 1 << 8 | 8, nvi, NULL, 0);
	if (!ret)
		ret = admin(fd, 0x1c, c | 9, 0, NULL, 0);
	return ret;
}
