/* SPDX-License-Identifier: GPL-2.0 */
/*
 * PCI sysfs, environment and kernel-log helpers for the nvme_vfio_pci
 * kselftests.
 *
 * Owns: nothing persistent.  Every function works on paths under
 * /sys/bus/pci and on the kernel log; none keeps state between calls except
 * the thread's last error message (nvp_lasterr()).
 *
 * Return convention: 0 (or a non-negative count) on success, -errno on
 * failure, with a human-readable reason in nvp_lasterr().
 */
#ifndef NVP_PCI_SYSFS_H
#define NVP_PCI_SYSFS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Last error message set by any nvp_* helper (never NULL). */
const char *nvp_lasterr(void);
void nvp_seterr(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Environment contract of the in-VM runner. */
#define NVP_DEFAULT_DRIVER "nvme_vfio_pci"
const char *nvp_env(const char *name);		/* NULL if unset or empty */
const char *nvp_env_driver(void);		/* NVP_DRIVER or the default */
bool nvp_driver_is_stock_vfio_pci(void);	/* NVP_DRIVER == vfio-pci */

/*
 * Name of the driver bound to @bdf in @drv (basename of the driver symlink).
 * Returns 0 if bound, -ENOENT if unbound, other -errno on error.
 */
int nvp_pci_driver(const char *bdf, char *drv, size_t len);
bool nvp_pci_exists(const char *bdf);
bool nvp_pci_is_vf(const char *bdf);
/* BDF of the PF of VF @bdf (from the physfn link). */
int nvp_pci_physfn(const char *bdf, char *pf, size_t len);
/* 1-based number of VF @bdf on its PF (its virtfnN link is N = *vfn - 1). */
int nvp_pci_vf_number(const char *bdf, unsigned int *vfn);

/* Write @val to /sys/bus/pci/devices/<bdf>/<attr>. */
int nvp_pci_write_attr(const char *bdf, const char *attr, const char *val);
int nvp_pci_read_attr(const char *bdf, const char *attr, char *buf, size_t len);
/* Unbind @bdf from its driver; 0 if it was already unbound. */
int nvp_pci_unbind(const char *bdf);
/* Set (drv != NULL) or clear (drv == NULL) driver_override. */
int nvp_pci_set_override(const char *bdf, const char *drv);
/* echo bdf > /sys/bus/pci/drivers_probe; returns the write's result. */
int nvp_pci_drivers_probe(const char *bdf);
/* echo bdf > /sys/bus/pci/drivers/<drv>/bind */
int nvp_pci_bind(const char *bdf, const char *drv);
/* Size of BAR @bar from the sysfs "resource" file (0 if unimplemented). */
int nvp_pci_bar_size(const char *bdf, int bar, uint64_t *size);
/* Read a hex sysfs attribute such as "vendor" or "device". */
int nvp_pci_read_hex(const char *bdf, const char *attr, unsigned long *val);

/*
 * VFIO character device of @bdf: finds /sys/bus/pci/devices/<bdf>/vfio-dev/
 * vfioN and writes "/dev/vfio/devices/vfioN" to @path.  -ENOENT if the device
 * has no VFIO cdev (not bound to a VFIO driver).
 */
int nvp_vfio_cdev_path(const char *bdf, char *path, size_t len);

/*
 * Kernel log.
 *
 * nvp_klog_read_all(): the whole printk ring buffer through
 * klogctl(SYSLOG_ACTION_READ_ALL); malloc'ed, NUL-terminated, or NULL.
 *
 * nvp_klog_last_line(): copy into @out the last line of the ring buffer that
 * contains every one of the (NULL-terminated) needles.  0 if found,
 * -ENOENT if not.
 *
 * nvp_klog_scid(): the "secondary controller ID <n>" of the last
 * "<driver> <bdf>: bound:" line.
 */
char *nvp_klog_read_all(void);
int nvp_klog_last_line(char *out, size_t len, const char *const needles[]);
int nvp_klog_scid(const char *driver, const char *bdf, unsigned int *scid);

/*
 * /dev/kmsg cursor: nvp_kmsg_mark() opens /dev/kmsg positioned at the end of
 * the log; nvp_kmsg_find_new() scans the records logged since then for one
 * containing every needle and copies it to @out.  0 if found, -ENOENT if
 * not.  Close the cursor with close().
 */
int nvp_kmsg_mark(void);
int nvp_kmsg_find_new(int fd, char *out, size_t len, const char *const needles[]);

/* Monotonic milliseconds, and a short sleep for polling loops. */
uint64_t nvp_now_ms(void);
void nvp_sleep_us(unsigned int us);

#endif
