// SPDX-License-Identifier: GPL-2.0
/*
 * PCI sysfs, environment and kernel-log helpers (see pci_sysfs.h).
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/klog.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "pci_sysfs.h"

#define SYSFS_PCI "/sys/bus/pci"

static __thread char nvp_errbuf[512];

const char *nvp_lasterr(void)
{
	return nvp_errbuf;
}

void nvp_seterr(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(nvp_errbuf, sizeof(nvp_errbuf), fmt, ap);
	va_end(ap);
}

const char *nvp_env(const char *name)
{
	const char *v = getenv(name);

	return (v && *v) ? v : NULL;
}

const char *nvp_env_driver(void)
{
	const char *v = nvp_env("NVP_DRIVER");

	return v ? v : NVP_DEFAULT_DRIVER;
}

bool nvp_driver_is_stock_vfio_pci(void)
{
	return strcmp(nvp_env_driver(), "vfio-pci") == 0;
}

static void dev_path(char *buf, size_t len, const char *bdf, const char *attr)
{
	snprintf(buf, len, SYSFS_PCI "/devices/%s/%s", bdf, attr);
}

bool nvp_pci_exists(const char *bdf)
{
	char p[PATH_MAX];
	struct stat st;

	snprintf(p, sizeof(p), SYSFS_PCI "/devices/%s", bdf);
	return stat(p, &st) == 0;
}

int nvp_pci_driver(const char *bdf, char *drv, size_t len)
{
	char p[PATH_MAX], link[PATH_MAX];
	ssize_t n;
	const char *base;

	dev_path(p, sizeof(p), bdf, "driver");
	n = readlink(p, link, sizeof(link) - 1);
	if (n < 0) {
		int e = errno;

		if (drv && len)
			drv[0] = '\0';
		if (e == ENOENT)
			return -ENOENT;
		nvp_seterr("readlink %s: %s", p, strerror(e));
		return -e;
	}
	link[n] = '\0';
	base = strrchr(link, '/');
	base = base ? base + 1 : link;
	if (drv && len)
		snprintf(drv, len, "%s", base);
	return 0;
}

bool nvp_pci_is_vf(const char *bdf)
{
	char p[PATH_MAX];
	struct stat st;

	dev_path(p, sizeof(p), bdf, "physfn");
	return lstat(p, &st) == 0;
}

int nvp_pci_physfn(const char *bdf, char *pf, size_t len)
{
	char p[PATH_MAX], link[PATH_MAX];
	const char *base;
	ssize_t n;

	dev_path(p, sizeof(p), bdf, "physfn");
	n = readlink(p, link, sizeof(link) - 1);
	if (n < 0) {
		int e = errno;

		nvp_seterr("readlink %s: %s", p, strerror(e));
		return -e;
	}
	link[n] = '\0';
	base = strrchr(link, '/');
	snprintf(pf, len, "%s", base ? base + 1 : link);
	return 0;
}

int nvp_pci_vf_number(const char *bdf, unsigned int *vfn)
{
	char pf[64], p[PATH_MAX], link[PATH_MAX];
	const char *base;
	unsigned int i;
	ssize_t n;
	int ret;

	ret = nvp_pci_physfn(bdf, pf, sizeof(pf));
	if (ret)
		return ret;
	for (i = 0; i < 256; i++) {
		snprintf(p, sizeof(p), SYSFS_PCI "/devices/%s/virtfn%u", pf, i);
		n = readlink(p, link, sizeof(link) - 1);
		if (n < 0)
			break;
		link[n] = '\0';
		base = strrchr(link, '/');
		if (!strcmp(base ? base + 1 : link, bdf)) {
			*vfn = i + 1;
			return 0;
		}
	}
	nvp_seterr("%s is not among the virtfn links of its PF %s", bdf, pf);
	return -ENOENT;
}

static int write_file(const char *path, const char *val)
{
	size_t len = strlen(val);
	ssize_t n;
	int fd, e;

	fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0) {
		e = errno;
		nvp_seterr("open %s: %s", path, strerror(e));
		return -e;
	}
	n = write(fd, val, len);
	e = errno;
	close(fd);
	if (n < 0) {
		nvp_seterr("write '%s' to %s: %s", val, path, strerror(e));
		return -e;
	}
	if ((size_t)n != len) {
		nvp_seterr("short write to %s (%zd of %zu)", path, n, len);
		return -EIO;
	}
	return 0;
}

static int read_file(const char *path, char *buf, size_t len)
{
	ssize_t n;
	int fd, e;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		e = errno;
		nvp_seterr("open %s: %s", path, strerror(e));
		return -e;
	}
	n = read(fd, buf, len - 1);
	e = errno;
	close(fd);
	if (n < 0) {
		nvp_seterr("read %s: %s", path, strerror(e));
		return -e;
	}
	buf[n] = '\0';
	while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == ' '))
		buf[--n] = '\0';
	return 0;
}

int nvp_pci_write_attr(const char *bdf, const char *attr, const char *val)
{
	char p[PATH_MAX];

	dev_path(p, sizeof(p), bdf, attr);
	return write_file(p, val);
}

int nvp_pci_read_attr(const char *bdf, const char *attr, char *buf, size_t len)
{
	char p[PATH_MAX];

	dev_path(p, sizeof(p), bdf, attr);
	return read_file(p, buf, len);
}

int nvp_pci_unbind(const char *bdf)
{
	char drv[128], p[PATH_MAX];
	int ret;

	ret = nvp_pci_driver(bdf, drv, sizeof(drv));
	if (ret == -ENOENT)
		return 0;
	if (ret)
		return ret;
	snprintf(p, sizeof(p), SYSFS_PCI "/drivers/%s/unbind", drv);
	return write_file(p, bdf);
}

int nvp_pci_set_override(const char *bdf, const char *drv)
{
	/* A lone newline clears driver_override. */
	return nvp_pci_write_attr(bdf, "driver_override", drv ? drv : "\n");
}

int nvp_pci_drivers_probe(const char *bdf)
{
	return write_file(SYSFS_PCI "/drivers_probe", bdf);
}

int nvp_pci_bind(const char *bdf, const char *drv)
{
	char p[PATH_MAX];

	snprintf(p, sizeof(p), SYSFS_PCI "/drivers/%s/bind", drv);
	return write_file(p, bdf);
}

int nvp_pci_bar_size(const char *bdf, int bar, uint64_t *size)
{
	char p[PATH_MAX], line[256];
	uint64_t start, end, flags;
	FILE *f;
	int i;

	dev_path(p, sizeof(p), bdf, "resource");
	f = fopen(p, "re");
	if (!f) {
		int e = errno;

		nvp_seterr("open %s: %s", p, strerror(e));
		return -e;
	}
	for (i = 0; i <= bar; i++) {
		if (!fgets(line, sizeof(line), f)) {
			fclose(f);
			nvp_seterr("%s: no line for BAR %d", p, bar);
			return -EINVAL;
		}
	}
	fclose(f);
	if (sscanf(line, "%" SCNx64 " %" SCNx64 " %" SCNx64, &start, &end, &flags) != 3) {
		nvp_seterr("%s: cannot parse '%s'", p, line);
		return -EINVAL;
	}
	*size = (end > start || (end == start && start)) ? end - start + 1 : 0;
	return 0;
}

int nvp_pci_read_hex(const char *bdf, const char *attr, unsigned long *val)
{
	char buf[64], *end;
	int ret;

	ret = nvp_pci_read_attr(bdf, attr, buf, sizeof(buf));
	if (ret)
		return ret;
	errno = 0;
	*val = strtoul(buf, &end, 16);
	if (errno || end == buf) {
		nvp_seterr("%s/%s: not a hex number: '%s'", bdf, attr, buf);
		return -EINVAL;
	}
	return 0;
}

int nvp_vfio_cdev_path(const char *bdf, char *path, size_t len)
{
	char p[PATH_MAX];
	struct dirent *de;
	DIR *d;
	int ret = -ENOENT;

	dev_path(p, sizeof(p), bdf, "vfio-dev");
	d = opendir(p);
	if (!d) {
		int e = errno;

		nvp_seterr("%s: %s (not bound to a VFIO cdev driver?)", p, strerror(e));
		return -e;
	}
	while ((de = readdir(d))) {
		if (strncmp(de->d_name, "vfio", 4) == 0) {
			snprintf(path, len, "/dev/vfio/devices/%s", de->d_name);
			ret = 0;
			break;
		}
	}
	closedir(d);
	if (ret)
		nvp_seterr("%s holds no vfioN entry", p);
	return ret;
}

/* ---- kernel log ---- */

char *nvp_klog_read_all(void)
{
	int size, n;
	char *buf;

	size = klogctl(10 /* SYSLOG_ACTION_SIZE_BUFFER */, NULL, 0);
	if (size <= 0)
		size = 1 << 20;
	buf = malloc((size_t)size + 1);
	if (!buf) {
		nvp_seterr("out of memory");
		return NULL;
	}
	n = klogctl(3 /* SYSLOG_ACTION_READ_ALL */, buf, size);
	if (n < 0) {
		nvp_seterr("klogctl(SYSLOG_ACTION_READ_ALL): %s", strerror(errno));
		free(buf);
		return NULL;
	}
	buf[n] = '\0';
	return buf;
}

static bool line_has_all(const char *line, const char *const needles[])
{
	for (; *needles; needles++)
		if (!strstr(line, *needles))
			return false;
	return true;
}

int nvp_klog_last_line(char *out, size_t len, const char *const needles[])
{
	char *buf, *line, *save = NULL;
	int ret = -ENOENT;

	buf = nvp_klog_read_all();
	if (!buf)
		return -EIO;
	for (line = strtok_r(buf, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		if (line_has_all(line, needles)) {
			snprintf(out, len, "%s", line);
			ret = 0;
		}
	}
	free(buf);
	if (ret)
		nvp_seterr("no kernel log line contains '%s'...", needles[0]);
	return ret;
}

int nvp_klog_scid(const char *driver, const char *bdf, unsigned int *scid)
{
	char prefix[160], line[1024];
	const char *const needles[] = { prefix, "secondary controller ID ", NULL };
	const char *p;
	char *end;
	unsigned long v;
	int ret;

	snprintf(prefix, sizeof(prefix), "%s %s: bound:", driver, bdf);
	ret = nvp_klog_last_line(line, sizeof(line), needles);
	if (ret) {
		nvp_seterr("no '%s ... secondary controller ID <n>' line in the kernel log",
			   prefix);
		return ret;
	}
	p = strstr(line, "secondary controller ID ") + strlen("secondary controller ID ");
	errno = 0;
	v = strtoul(p, &end, 0);
	if (errno || end == p || v > 0xffff) {
		nvp_seterr("cannot parse the SCID in '%s'", line);
		return -EINVAL;
	}
	*scid = (unsigned int)v;
	return 0;
}

int nvp_kmsg_mark(void)
{
	int fd = open("/dev/kmsg", O_RDONLY | O_NONBLOCK | O_CLOEXEC);

	if (fd < 0) {
		int e = errno;

		nvp_seterr("open /dev/kmsg: %s", strerror(e));
		return -e;
	}
	if (lseek(fd, 0, SEEK_END) < 0) {
		int e = errno;

		nvp_seterr("lseek /dev/kmsg: %s", strerror(e));
		close(fd);
		return -e;
	}
	return fd;
}

int nvp_kmsg_find_new(int fd, char *out, size_t len, const char *const needles[])
{
	char rec[8192];
	ssize_t n;

	for (;;) {
		const char *msg;

		n = read(fd, rec, sizeof(rec) - 1);
		if (n < 0) {
			if (errno == EPIPE)	/* overwritten records: go on */
				continue;
			if (errno == EINTR)
				continue;
			break;			/* EAGAIN: nothing more */
		}
		rec[n] = '\0';
		msg = strchr(rec, ';');
		msg = msg ? msg + 1 : rec;
		/* Only the message line, not the " KEY=value" dictionary. */
		{
			char *nl = strchr(rec, '\n');

			if (nl)
				*nl = '\0';
		}
		if (line_has_all(msg, needles)) {
			snprintf(out, len, "%s", msg);
			return 0;
		}
	}
	nvp_seterr("no new kernel log record contains '%s'...", needles[0]);
	return -ENOENT;
}

uint64_t nvp_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

void nvp_sleep_us(unsigned int us)
{
	struct timespec ts = { .tv_sec = us / 1000000, .tv_nsec = (long)(us % 1000000) * 1000 };

	nanosleep(&ts, NULL);
}
