/* The sandbox's file tree: an overlay (or a bind) as the root, the spec's mounts
 * resolved strictly inside it, default devices, pivot_root, masked paths. All of
 * it happens in the sandbox's own mount namespace, so it dies with the sandbox. */
#include "runtime.h"
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <net/if.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/vfs.h>
#include <sys/syscall.h>
#include <unistd.h>

#define ANNOTATION_LOWERDIRS "org.vitest-container.rootfs.lowerdirs"
#define ANNOTATION_OVERLAY_OPTIONS "org.vitest-container.rootfs.options"
#define ANNOTATION_UPPER_SIZE "org.vitest-container.rootfs.upper-size"
/* "toplevel": the single lower directory is a live file tree with mounts below it
 * (the host's "/"). Overlay cannot take such a tree as one layer inside a user
 * namespace (its submounts are locked), so the root becomes a tmpfs with one
 * overlay per top-level directory, and directories holding mounts are bound
 * read-only, recursively. "toplevel-readonly": every top-level directory bound
 * read-only (see compose_toplevel). */
#define ANNOTATION_COMPOSE "org.vitest-container.rootfs.compose"
/* "true": the image layers are seen through idmapped mounts of the sandbox's user namespace (a rootfs:
 * directory with host owners, started by root), as if unpacked with the sandbox's ids. */
#define ANNOTATION_IDMAP_LAYERS "org.vitest-container.rootfs.idmap"
/* Comma-separated absolute paths that start as empty directories (mode 1777) on the scratch tmpfs. */
#define ANNOTATION_FRESH_DIRS "org.vitest-container.rootfs.fresh-dirs"

/* New mount API (Linux 5.2+); glibc's and the kernel's headers clash, so only what is used. */
#define VTC_FSOPEN_CLOEXEC 0x1
#define VTC_FSCONFIG_SET_FLAG 0
#define VTC_FSCONFIG_SET_STRING 1
#define VTC_FSCONFIG_CMD_CREATE 6
#define VTC_FSMOUNT_CLOEXEC 0x1
#define VTC_MOVE_MOUNT_F_EMPTY_PATH 0x4
#define VTC_MOVE_MOUNT_T_EMPTY_PATH 0x40

static const struct { const char *name; unsigned long set, clear; } mount_flags[] = {
  {"ro", MS_RDONLY, 0}, {"rw", 0, MS_RDONLY}, {"nosuid", MS_NOSUID, 0}, {"suid", 0, MS_NOSUID},
  {"nodev", MS_NODEV, 0}, {"dev", 0, MS_NODEV}, {"noexec", MS_NOEXEC, 0}, {"exec", 0, MS_NOEXEC},
  {"sync", MS_SYNCHRONOUS, 0}, {"async", 0, MS_SYNCHRONOUS}, {"noatime", MS_NOATIME, 0},
  {"atime", 0, MS_NOATIME}, {"nodiratime", MS_NODIRATIME, 0}, {"relatime", MS_RELATIME, 0},
  {"norelatime", 0, MS_RELATIME}, {"strictatime", MS_STRICTATIME, 0}, {"bind", MS_BIND, 0},
  {"rbind", MS_BIND | MS_REC, 0},
};
static const struct { const char *name; unsigned long flag; } propagation_flags[] = {
  {"private", MS_PRIVATE}, {"rprivate", MS_PRIVATE | MS_REC}, {"slave", MS_SLAVE},
  {"rslave", MS_SLAVE | MS_REC}, {"shared", MS_SHARED}, {"rshared", MS_SHARED | MS_REC},
  {"unbindable", MS_UNBINDABLE}, {"runbindable", MS_UNBINDABLE | MS_REC},
};

/* recursive: "rro" makes every mount below the destination read-only too (runc's option of that name). */
typedef struct { unsigned long flags, propagation; bool recursive_ro; char data[4096]; } mount_opts;

static void parse_options(const jval *options, mount_opts *o) {
  memset(o, 0, sizeof *o);
  if (!options) return;
  for (const jval *c = options->child; c; c = c->next) {
    if (c->type != J_STR) die("mount", NULL, 0, "mount options must be strings");
    bool known = false;
    if (!strcmp(c->str, "rro")) { o->recursive_ro = true; o->flags |= MS_RDONLY; continue; }
    if (!strcmp(c->str, "idmap") || !strcmp(c->str, "ridmap")) continue; /* the monitor made it so (see rootfs_idmap_requests) */
    for (size_t i = 0; i < sizeof mount_flags / sizeof mount_flags[0]; i++)
      if (!strcmp(c->str, mount_flags[i].name)) { o->flags = (o->flags | mount_flags[i].set) & ~mount_flags[i].clear; known = true; }
    for (size_t i = 0; i < sizeof propagation_flags / sizeof propagation_flags[0]; i++)
      if (!strcmp(c->str, propagation_flags[i].name)) { o->propagation |= propagation_flags[i].flag; known = true; }
    if (known) continue;
    size_t len = strlen(o->data);
    if (len + strlen(c->str) + 2 >= sizeof o->data) die("mount", NULL, E2BIG, "mount options too long");
    if (len) strcat(o->data, ",");
    strcat(o->data, c->str);
  }
}

/* Flags the kernel locks on a mount that came from a less privileged namespace;
 * a remount must repeat them or fail with EPERM (rootless bind mounts). */
static unsigned long locked_flags(const char *path) {
  struct statvfs st;
  if (statvfs(path, &st) < 0) return 0;
  unsigned long f = 0;
  if (st.f_flag & ST_NOSUID) f |= MS_NOSUID;
  if (st.f_flag & ST_NODEV) f |= MS_NODEV;
  if (st.f_flag & ST_NOEXEC) f |= MS_NOEXEC;
  if (st.f_flag & ST_NOATIME) f |= MS_NOATIME;
  if (st.f_flag & ST_NODIRATIME) f |= MS_NODIRATIME;
  if (st.f_flag & ST_RELATIME) f |= MS_RELATIME;
  return f;
}

static int openat2_in_root(int rootfd, const char *path, int flags) {
  struct open_how how = { .flags = (unsigned long long)(flags | O_CLOEXEC), .resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS };
  return (int)syscall(SYS_openat2, rootfd, path, &how, sizeof how);
}

/* Opens (creating when missing) path inside rootfd without ever leaving it:
 * symlinks in the image are resolved as if rootfd were "/". */
int open_in_root(int rootfd, const char *path, bool want_dir) {
  while (*path == '/') path++;
  if (!*path) return openat2_in_root(rootfd, ".", O_PATH | O_DIRECTORY);
  int fd = openat2_in_root(rootfd, path, O_PATH);
  if (fd >= 0 || errno != ENOENT) return fd;
  char buf[4096];
  if (strlen(path) >= sizeof buf) { errno = ENAMETOOLONG; return -1; }
  strcpy(buf, path);
  char *slash = strrchr(buf, '/');
  int parent;
  const char *leaf = buf;
  if (slash) {
    *slash = 0;
    leaf = slash + 1;
    parent = open_in_root(rootfd, buf, true);
  } else {
    parent = openat2_in_root(rootfd, ".", O_PATH | O_DIRECTORY);
  }
  if (parent < 0) return -1;
  if (want_dir) {
    if (mkdirat(parent, leaf, 0755) < 0 && errno != EEXIST) { close(parent); return -1; }
  } else {
    int f = openat(parent, leaf, O_CREAT | O_WRONLY | O_NOFOLLOW | O_CLOEXEC, 0644);
    if (f < 0 && errno != EEXIST && errno != ELOOP) { close(parent); return -1; }
    if (f >= 0) close(f);
  }
  close(parent);
  return openat2_in_root(rootfd, path, O_PATH);
}

static void fd_path(int fd, char *buf, size_t len) { snprintf(buf, len, "/proc/self/fd/%d", fd); }

static void remount_with(const char *target, unsigned long flags, const char *what) {
  if (mount(NULL, target, NULL, MS_REMOUNT | MS_BIND | flags | locked_flags(target), NULL) < 0)
    die("mount", what, errno, "remounting with the requested flags");
}

#ifndef MOUNT_ATTR_RDONLY
#define MOUNT_ATTR_RDONLY 0x00000001
#endif
#ifndef AT_RECURSIVE
#define AT_RECURSIVE 0x8000
#endif
struct vtc_mount_attr { uint64_t attr_set, attr_clr, propagation, userns_fd; };

#ifndef MOUNT_ATTR_NOSUID
#define MOUNT_ATTR_NOSUID 0x00000002
#define MOUNT_ATTR_NODEV 0x00000004
#define MOUNT_ATTR_NOEXEC 0x00000008
#endif

/* Read-only all the way down: the mount at target and every mount below it. A plain remount would
 * leave a mount under the source (a tmpfs the host mounted there) writable. */
static void make_readonly_recursive(const char *target, const char *what) {
  struct vtc_mount_attr attr = { .attr_set = MOUNT_ATTR_RDONLY };
  if (syscall(SYS_mount_setattr, AT_FDCWD, target, AT_RECURSIVE, &attr, sizeof attr) == 0) return;
  if (errno != ENOSYS) die("mount", what, errno, "making a mount read-only recursively");
  /* Linux < 5.12: every mount point at or below target, one remount each (mountinfo lists parents first). */
  char real[4096];
  if (!realpath(target, real)) die("mount", what, errno, "resolving a mount point");
  char *mountinfo = read_file("/proc/self/mountinfo", 1 << 22);
  if (!mountinfo) die("mount", what, errno, "reading the mount table");
  size_t len = strlen(real);
  for (char *line = mountinfo; line && *line;) {
    char mp[4096];
    if (sscanf(line, "%*s %*s %*s %*s %4095s", mp) == 1 && !strncmp(mp, real, len) && (mp[len] == 0 || mp[len] == '/' || len == 1))
      remount_with(mp, MS_RDONLY, what);
    line = strchr(line, '\n');
    if (line) line++;
  }
  free(mountinfo);
}

static void do_mount(int rootfd, const jval *m, int source_fd, bool source_idmapped, bool in_userns) {
  const char *dest = json_str(m, "destination"), *type = json_str(m, "type"), *source = json_str(m, "source");
  if (!dest || dest[0] != '/') die("mount", dest, EINVAL, "mount destination must be an absolute path");
  mount_opts o;
  parse_options(json_get(m, "options"), &o);
  bool bind = (o.flags & MS_BIND) || (type && !strcmp(type, "bind"));
  if (bind) {
    /* The source was opened by rootfs_prepare (with the caller's identity): bound through its fd. */
    struct stat st;
    if (source_fd < 0 || fstat(source_fd, &st) < 0) die("mount", source, errno ? errno : EBADF, "bind mount source is missing");
    int fd = open_in_root(rootfd, dest, S_ISDIR(st.st_mode));
    if (fd < 0) die("mount", dest, errno, "cannot create the mount point in the root filesystem");
    char target[64], held[64];
    fd_path(fd, target, sizeof target);
    fd_path(source_fd, held, sizeof held);
    if (source_idmapped) {
      /* Made by the monitor (open_tree + mount_setattr): already a copy of the source, recursive when asked. */
      if (syscall(SYS_move_mount, source_fd, "", fd, "", VTC_MOVE_MOUNT_F_EMPTY_PATH | VTC_MOVE_MOUNT_T_EMPTY_PATH) < 0)
        die("mount", source, errno, "attaching an idmapped mount onto %s", dest);
    } else if (mount(held, target, NULL, MS_BIND | (o.flags & MS_REC), NULL) < 0) {
      die("mount", source, errno, "bind mount onto %s", dest);
    }
    close(fd);
    /* The fd still names the directory under the new mount: reopen to reach the mount itself. */
    fd = open_in_root(rootfd, dest, S_ISDIR(st.st_mode));
    if (fd < 0) die("mount", dest, errno, "reopening the mount point");
    fd_path(fd, target, sizeof target);
    unsigned long extra = o.flags & ~(MS_BIND | MS_REC);
    if (extra) remount_with(target, extra, dest);
    if (o.recursive_ro) make_readonly_recursive(target, dest);
    if (o.propagation && mount(NULL, target, NULL, o.propagation, NULL) < 0) die("mount", dest, errno, "propagation");
    close(fd);
    return;
  }
  if (!type) die("mount", dest, EINVAL, "mount without a type");
  int fd = open_in_root(rootfd, dest, true);
  if (fd < 0) die("mount", dest, errno, "cannot create the mount point in the root filesystem");
  char target[64];
  fd_path(fd, target, sizeof target);
  if (mount(source ? source : type, target, type, o.flags, o.data[0] ? o.data : NULL) < 0) {
    int err = errno;
    /* A user namespace may not mount sysfs when the host hides parts of it: fall back to the host's, read-only. */
    if (!strcmp(type, "sysfs") && in_userns && err == EPERM) {
      if (mount("/sys", target, NULL, MS_BIND | MS_REC, NULL) < 0) die("mount", dest, errno, "binding /sys");
      close(fd);
      fd = open_in_root(rootfd, dest, true); /* the mount itself, not the directory under it */
      fd_path(fd, target, sizeof target);
      struct vtc_mount_attr attr = { .attr_set = MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV | MOUNT_ATTR_NOEXEC };
      if (syscall(SYS_mount_setattr, AT_FDCWD, target, AT_RECURSIVE, &attr, sizeof attr) < 0) make_readonly_recursive(target, dest);
    } else {
      die("mount", dest, err, "mounting %s", type);
    }
  }
  close(fd);
}

/* OCI default devices. Bound from the host's /dev, which works with and without a user namespace. */
static void populate_dev(int rootfd) {
  static const char *const devices[] = { "null", "zero", "full", "random", "urandom", "tty" };
  int devfd = openat2_in_root(rootfd, "dev", O_PATH | O_DIRECTORY);
  if (devfd < 0) die("devices", "/dev", errno, "opening /dev");
  for (size_t i = 0; i < sizeof devices / sizeof devices[0]; i++) {
    int f = openat(devfd, devices[i], O_CREAT | O_WRONLY | O_NOFOLLOW | O_CLOEXEC, 0666);
    if (f < 0 && errno != EEXIST) die("devices", devices[i], errno, "creating the device mount point");
    if (f >= 0) close(f);
    char host[64], target[96];
    snprintf(host, sizeof host, "/dev/%s", devices[i]);
    int t = openat(devfd, devices[i], O_PATH | O_NOFOLLOW | O_CLOEXEC);
    if (t < 0) die("devices", host, errno, "opening the device mount point");
    fd_path(t, target, sizeof target);
    if (mount(host, target, NULL, MS_BIND, NULL) < 0) die("devices", host, errno, "binding the device");
    close(t);
  }
  static const char *const links[][2] = {
    {"/proc/self/fd", "fd"}, {"/proc/self/fd/0", "stdin"}, {"/proc/self/fd/1", "stdout"},
    {"/proc/self/fd/2", "stderr"}, {"pts/ptmx", "ptmx"},
  };
  for (size_t i = 0; i < sizeof links / sizeof links[0]; i++)
    if (symlinkat(links[i][0], devfd, links[i][1]) < 0 && errno != EEXIST) die("devices", links[i][1], errno, "symlink");
  close(devfd);
}

static int fs_context_error(int fsfd, char *msg, size_t len) {
  msg[0] = 0;
  ssize_t n = read(fsfd, msg, len - 1);
  if (n > 0) { msg[n] = 0; msg[strcspn(msg, "\n")] = 0; }
  return 0;
}

#define OVERLAYFS_MAGIC 0x794c7630

/* Overlay tells the kernel log, not the caller, why it refused. The one reason a host can cause and a
 * user can fix: a lower layer already on an overlay that is on another (the kernel stacks two at most). */
static void overlay_refusal_reason(char **lowers, char *msg, size_t len) {
  for (char **l = lowers; *l; l++) {
    struct statfs st;
    if (statfs(*l, &st) == 0 && st.f_type == OVERLAYFS_MAGIC) {
      snprintf(msg, len, "(a lower layer is on an overlay: the kernel's maximum fs stacking depth is exceeded when that overlay is itself on one)");
      return;
    }
  }
}

/* Overlay with the new mount API: "lowerdir+" takes one layer at a time, so
 * the 4 KiB limit on mount options does not cap the number of layers. */
static bool mount_overlay_fsconfig(char **lowers, const char *upper, const char *work, char **opts, const char *target) {
  int fsfd = (int)syscall(SYS_fsopen, "overlay", VTC_FSOPEN_CLOEXEC);
  if (fsfd < 0) return false;
  /* Before Linux 6.5 overlay has no fs_context of its own: the legacy one takes
   * any key (it only collects an option string for mount(2)), so "lowerdir+"
   * would be accepted here and fail only at CMD_CREATE. A key nobody knows
   * tells the two apart: only the legacy context accepts it. */
  if (syscall(SYS_fsconfig, fsfd, VTC_FSCONFIG_SET_FLAG, "vtc-probe", NULL, 0) == 0) { close(fsfd); return false; }
  char msg[512];
  /* The probe's refusal went to the context's log: drop it, so a later error reads the kernel's real reason. */
  while (read(fsfd, msg, sizeof msg) > 0) {}
  for (char **l = lowers; *l; l++)
    if (syscall(SYS_fsconfig, fsfd, VTC_FSCONFIG_SET_STRING, "lowerdir+", *l, 0) < 0) {
      if (l == lowers && errno == EINVAL) { close(fsfd); return false; } /* kernel < 6.8 */
      fs_context_error(fsfd, msg, sizeof msg);
      die("overlay", *l, errno, "adding a lower layer %s", msg);
    }
  if (syscall(SYS_fsconfig, fsfd, VTC_FSCONFIG_SET_STRING, "upperdir", upper, 0) < 0 ||
      syscall(SYS_fsconfig, fsfd, VTC_FSCONFIG_SET_STRING, "workdir", work, 0) < 0) {
    fs_context_error(fsfd, msg, sizeof msg);
    die("overlay", upper, errno, "setting the upper layer %s", msg);
  }
  for (char **o = opts; *o; o++) {
    char *eq = strchr(*o, '=');
    long r;
    if (eq) {
      *eq = 0;
      r = syscall(SYS_fsconfig, fsfd, VTC_FSCONFIG_SET_STRING, *o, eq + 1, 0);
      *eq = '=';
    } else {
      r = syscall(SYS_fsconfig, fsfd, VTC_FSCONFIG_SET_FLAG, *o, NULL, 0);
    }
    if (r < 0) { fs_context_error(fsfd, msg, sizeof msg); die("overlay", *o, errno, "overlay option %s", msg); }
  }
  if (syscall(SYS_fsconfig, fsfd, VTC_FSCONFIG_CMD_CREATE, NULL, NULL, 0) < 0) {
    int err = errno;
    fs_context_error(fsfd, msg, sizeof msg);
    if (!msg[0] && err == EINVAL) overlay_refusal_reason(lowers, msg, sizeof msg);
    die("overlay", lowers[0], err, "creating the overlay %s", msg);
  }
  int mfd = (int)syscall(SYS_fsmount, fsfd, VTC_FSMOUNT_CLOEXEC, 0);
  if (mfd < 0) die("overlay", target, errno, "fsmount");
  if (syscall(SYS_move_mount, mfd, "", AT_FDCWD, target, VTC_MOVE_MOUNT_F_EMPTY_PATH) < 0)
    die("overlay", target, errno, "move_mount");
  close(mfd);
  close(fsfd);
  return true;
}

static void mount_overlay_classic(char **lowers, const char *upper, const char *work, char **opts, const char *target) {
  char data[4096];
  size_t o = (size_t)snprintf(data, sizeof data, "lowerdir=");
  for (char **l = lowers; *l; l++) o += (size_t)snprintf(data + o, o < sizeof data ? sizeof data - o : 0, "%s%s", l == lowers ? "" : ":", *l);
  o += (size_t)snprintf(data + o, o < sizeof data ? sizeof data - o : 0, ",upperdir=%s,workdir=%s", upper, work);
  for (char **p = opts; *p; p++) o += (size_t)snprintf(data + o, o < sizeof data ? sizeof data - o : 0, ",%s", *p);
  if (o >= sizeof data - 1)
    die("overlay", lowers[0], E2BIG, "too many layers for this kernel's overlay mount options (Linux 6.8 or newer lifts the limit)");
  if (mount("overlay", target, "overlay", 0, data) < 0) {
    int err = errno;
    char msg[256] = "";
    if (err == EINVAL) overlay_refusal_reason(lowers, msg, sizeof msg);
    die("overlay", lowers[0], err, "mounting the overlay root %s", msg);
  }
}

static char **split(const char *s, char sep) {
  size_t n = 1;
  for (const char *p = s; *p; p++) n += *p == sep;
  char **out = calloc(n + 1, sizeof *out), *copy = strdup(s);
  size_t i = 0;
  for (char *tok = copy, *next; tok; tok = next) {
    next = strchr(tok, sep);
    if (next) *next++ = 0;
    if (*tok) out[i++] = tok;
  }
  return out;
}

/* Drops from mountinfo the lines of our own scratch tmpfs and what is mounted on it: a run root in a
 * directory of the host tree (/tmp/vitest-container-UID, rootless) is not a host mount to show. */
static void forget_own_mounts(char *mountinfo, const char *scratch) {
  char own[4096];
  ssize_t n = readlink(scratch, own, sizeof own - 1);
  if (n <= 0) return;
  own[n] = 0;
  size_t len = (size_t)n;
  char *out = mountinfo;
  for (char *line = mountinfo; *line;) {
    char *end = strchr(line, '\n');
    size_t linelen = end ? (size_t)(end - line) + 1 : strlen(line);
    char mp[4096];
    bool ours = sscanf(line, "%*s %*s %*s %*s %4095s", mp) == 1 && !strncmp(mp, own, len) && (mp[len] == 0 || mp[len] == '/');
    if (!ours) {
      memmove(out, line, linelen);
      out += linelen;
    }
    line += linelen;
  }
  *out = 0;
}

/* Is path, or anything below it, a mount point? mountinfo is the list of mount points, read once. */
static bool has_mounts_below(const char *mountinfo, const char *path) {
  size_t len = strlen(path);
  for (const char *line = mountinfo; line && *line;) {
    char mp[4096];
    if (sscanf(line, "%*s %*s %*s %*s %4095s", mp) == 1 && !strncmp(mp, path, len) && (mp[len] == 0 || mp[len] == '/')) return true;
    line = strchr(line, '\n');
    if (line) line++;
  }
  return false;
}

/* Whether the spec puts something of its own at dest: a mount, or a fresh directory. */
static bool spec_mounts_over(const jval *cfg, const char *dest) {
  const jval *mounts = json_get(cfg, "mounts");
  for (const jval *m = mounts ? mounts->child : NULL; m; m = m->next) {
    const char *d = json_str(m, "destination");
    if (d && !strcmp(d, dest)) return true;
  }
  const char *fresh = json_str(json_get(cfg, "annotations"), ANNOTATION_FRESH_DIRS);
  for (char **f = fresh ? split(fresh, ',') : NULL; f && *f; f++)
    if (!strcmp(*f, dest)) return true;
  return false;
}

/* One mountinfo line's mount point, per-mount options and file system type ("\040" and the like undone). */
static bool parse_mountinfo_line(const char *line, char *mp, size_t mplen, char *opts, size_t optslen, char *fstype, size_t fslen) {
  char rawmp[4096];
  if (sscanf(line, "%*s %*s %*s %*s %4095s %1023s", rawmp, opts) != 2) return false;
  (void)optslen;
  const char *dash = strstr(line, " - ");
  if (!dash || sscanf(dash + 3, "%63s", fstype) != 1) return false;
  (void)fslen;
  size_t o = 0;
  for (const char *p = rawmp; *p && o + 1 < mplen; p++) {
    if (p[0] == '\\' && p[1] >= '0' && p[1] <= '3' && p[2] && p[3]) {
      mp[o++] = (char)((p[1] - '0') * 64 + (p[2] - '0') * 8 + (p[3] - '0'));
      p += 3;
    } else {
      mp[o++] = *p;
    }
  }
  mp[o] = 0;
  return true;
}

/* File systems that are kernel interfaces, not files: never given an overlay (they stay as bound). */
static bool pseudo_fs(const char *fstype) {
  static const char *const pseudo[] = { "proc", "sysfs", "cgroup", "cgroup2", "devpts", "devtmpfs", "mqueue", "tracefs",
    "debugfs", "securityfs", "pstore", "bpf", "configfs", "fusectl", "binfmt_misc", "autofs", "nsfs", "hugetlbfs",
    "efivarfs", "selinuxfs", "rpc_pipefs", "nfsd", "squashfs", "iso9660" };
  for (size_t i = 0; i < sizeof pseudo / sizeof pseudo[0]; i++)
    if (!strcmp(fstype, pseudo[i])) return true;
  return false;
}

/* Under the read-only bind of dir: every writable host mount with nothing mounted below it gets an
 * overlay of its own, so that writes there go to the throwaway layer like everywhere else. (A mount with
 * mounts below it cannot be overlay's lower layer in a user namespace: it would reveal what they cover.)
 * An overlay the kernel refuses leaves that mount read-only, as bound. */
static void overlay_leaf_mounts(const char *mountinfo, const char *dir, const char *scratch, const char *merged, char **opts) {
  size_t dirlen = strlen(dir);
  static int n;
  for (const char *line = mountinfo; line && *line; line = strchr(line, '\n') ? strchr(line, '\n') + 1 : NULL) {
    char mp[4096], mopts[1024], fstype[64];
    if (!parse_mountinfo_line(line, mp, sizeof mp, mopts, sizeof mopts, fstype, sizeof fstype)) continue;
    if (strncmp(mp, dir, dirlen) || (mp[dirlen] && mp[dirlen] != '/')) continue;
    if (pseudo_fs(fstype) || !strncmp(mopts, "ro", 2) || strpbrk(mp, ":,")) continue;
    bool leaf = true;
    size_t mplen = strlen(mp);
    for (const char *other = mountinfo; other && *other && leaf; other = strchr(other, '\n') ? strchr(other, '\n') + 1 : NULL) {
      char omp[4096], oopts[1024], ofs[64];
      if (parse_mountinfo_line(other, omp, sizeof omp, oopts, sizeof oopts, ofs, sizeof ofs) && !strncmp(omp, mp, mplen) && omp[mplen] == '/') leaf = false;
    }
    if (!leaf) continue;
    char up[128], wk[128], target[4200], data[8192];
    snprintf(up, sizeof up, "%s/upper-m%d", scratch, n);
    snprintf(wk, sizeof wk, "%s/work-m%d", scratch, n++);
    snprintf(target, sizeof target, "%s%s", merged, mp);
    if (mkdir(up, 0755) < 0 || mkdir(wk, 0700) < 0) die("rootfs", up, errno, "mkdir");
    size_t o = (size_t)snprintf(data, sizeof data, "lowerdir=%s,upperdir=%s,workdir=%s", mp, up, wk);
    for (char **p = opts; *p && o < sizeof data; p++) o += (size_t)snprintf(data + o, sizeof data - o, ",%s", *p);
    if (o < sizeof data && mount("overlay", target, "overlay", 0, data) == 0) continue;
    rmdir(wk);
    rmdir(up);
  }
}

/* readonly: the sandbox could write none of the host's files anyway (its ids do not map the host's owners:
 * a root-started sandbox's range), so each top-level directory is bound read-only instead of overlaid,
 * which costs a fraction of an overlay mount. */
/* How deep compose_dir goes into a directory holding mounts before it binds the rest read-only. */
#define COMPOSE_DEPTH 3

typedef struct { const jval *cfg; const char *scratch, *merged; char **opts; bool readonly; const char *mountinfo; int layers; } compose_ctx;

/* One directory of the host's tree into the composed root: each subdirectory with nothing mounted below
 * it gets an overlay (a throwaway layer); one that holds mounts is composed the same way one level down
 * (overlay cannot take it whole in a user namespace: that would reveal what its mounts cover), and at the
 * last level bound read-only, with an overlay on each writable leaf mount. Below the top, files are bound
 * read-only into the (writable) composed directory. readonly: every directory bound read-only instead. */
static void compose_dir(compose_ctx *c, const char *srcdir, const char *dstdir, const char *reldir, int depth) {
  DIR *d = opendir(srcdir);
  if (!d) {
    if (depth == 0) die("rootfs", srcdir, errno, "listing the root directory");
    return; /* a directory we may not read stays empty, as it would read */
  }
  struct dirent *e;
  char src[4200], dst[4200], rel[4200], up[128], wk[128], link[4096];
  while ((e = readdir(d))) {
    if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
    snprintf(src, sizeof src, "%s/%s", strcmp(srcdir, "/") ? srcdir : "", e->d_name);
    snprintf(dst, sizeof dst, "%s/%s", dstdir, e->d_name);
    snprintf(rel, sizeof rel, "%s/%s", reldir, e->d_name);
    struct stat st;
    if (lstat(src, &st) < 0) continue;
    if (S_ISLNK(st.st_mode)) {
      ssize_t n = readlink(src, link, sizeof link - 1);
      if (n < 0) continue;
      link[n] = 0;
      if (symlink(link, dst) < 0) die("rootfs", dst, errno, "symlink");
      continue;
    }
    if (S_ISREG(st.st_mode) && depth > 0) {
      int f = open(dst, O_CREAT | O_WRONLY | O_CLOEXEC, st.st_mode & 07777);
      if (f < 0) die("rootfs", dst, errno, "creating a mount point for a host file");
      close(f);
      if (mount(src, dst, NULL, MS_BIND, NULL) < 0) die("rootfs", src, errno, "binding a host file");
      make_readonly_recursive(dst, src);
      continue;
    }
    if (!S_ISDIR(st.st_mode)) continue;
    if (mkdir(dst, st.st_mode & 07777) < 0) die("rootfs", dst, errno, "mkdir");
    if (depth == 0 && spec_mounts_over(c->cfg, rel)) continue; /* /proc, /dev, /sys, /tmp: the spec gives fresh ones */
    bool mounts_below = has_mounts_below(c->mountinfo, src);
    if (!c->readonly && mounts_below && depth + 1 < COMPOSE_DEPTH) {
      chmod(dst, st.st_mode & 07777); /* mkdir's umask took write bits of a 1777 /tmp */
      compose_dir(c, src, dst, rel, depth + 1);
      continue;
    }
    if (c->readonly || mounts_below) {
      /* The host's mounts show, read-only all the way down (a checkout on its own mount, /home, ...);
       * those with nothing mounted below them then get a throwaway layer of their own. */
      if (mount(src, dst, NULL, MS_BIND | MS_REC, NULL) < 0) die("rootfs", src, errno, "binding a host directory");
      make_readonly_recursive(dst, src);
      if (!c->readonly) overlay_leaf_mounts(c->mountinfo, src, c->scratch, c->merged, c->opts);
      continue;
    }
    snprintf(up, sizeof up, "%s/upper-c%d", c->scratch, c->layers);
    snprintf(wk, sizeof wk, "%s/work-c%d", c->scratch, c->layers++);
    if (mkdir(up, 0755) < 0 || mkdir(wk, 0700) < 0) die("rootfs", up, errno, "mkdir");
    /* The overlay's root takes the upper's owner and mode: give it the host directory's mode. */
    chmod(up, st.st_mode & 07777);
    char *lowers[2] = { src, NULL };
    if (!mount_overlay_fsconfig(lowers, up, wk, c->opts, dst)) mount_overlay_classic(lowers, up, wk, c->opts, dst);
  }
  closedir(d);
}

static void compose_toplevel(const jval *cfg, const char *lower, const char *scratch, const char *merged, char **opts, bool readonly) {
  char *mountinfo = read_file("/proc/self/mountinfo", 1 << 22);
  if (!mountinfo) die("rootfs", "/proc/self/mountinfo", errno, "reading the mount table");
  forget_own_mounts(mountinfo, scratch);
  compose_ctx c = { cfg, scratch, merged, opts, readonly, mountinfo, 0 };
  compose_dir(&c, lower, merged, "", 0);
  free(mountinfo);
}

/* What rootfs_prepare opened while the sandbox still had the caller's identity. From a user namespace
 * whose root is not the caller, the bundle (0700), the image cache (e.g. under /root) and bind sources
 * may be out of reach by path; these fds reach them through /proc/self/fd without a lookup above them. */
static struct {
  int scratch;     /* the scratch tmpfs (upper/, work/, merged/, fresh/); without layers, the root itself */
  bool layered;    /* scratch is a tmpfs holding an overlay (else: the spec's root path, bound) */
  bool composed;   /* the root is composed of the host's top-level directories (compose=toplevel) */
  int *lowers;     /* one per lower layer, top-most first */
  bool *lower_idmapped; /* lowers[i] is a detached idmapped mount from the monitor (attached in rootfs_setup) */
  int nlowers;
  int *sources;    /* per spec mount: its bind source, or -1 */
  bool *source_idmapped; /* sources[i] is a detached idmapped mount from the monitor: moved into place, not bound */
  int nsources;
} prepared = { -1, false, false, NULL, NULL, 0, NULL, NULL, 0 };

static bool has_option(const jval *m, const char *name) {
  const jval *opts = json_get(m, "options");
  for (const jval *o = opts ? opts->child : NULL; o; o = o->next)
    if (o->type == J_STR && !strcmp(o->str, name)) return true;
  return false;
}

size_t rootfs_idmap_requests(const jval *cfg, idmap_request *out, size_t max) {
  size_t n = 0;
  const jval *ann = json_get(cfg, "annotations");
  const char *layers = json_str(ann, ANNOTATION_LOWERDIRS), *idmap = json_str(ann, ANNOTATION_IDMAP_LAYERS);
  if (layers && idmap && !strcmp(idmap, "true")) {
    char **lowers = split(layers, ':');
    for (int i = 0; lowers[i] && n < max; i++) out[n++] = (idmap_request){ lowers[i], false, i, -1 };
  }
  const jval *mounts = json_get(cfg, "mounts");
  int i = 0;
  for (const jval *m = mounts ? mounts->child : NULL; m && n < max; m = m->next, i++) {
    bool recursive = has_option(m, "ridmap");
    if ((recursive || has_option(m, "idmap")) && json_str(m, "source")) out[n++] = (idmap_request){ json_str(m, "source"), recursive, -1, i };
  }
  return n;
}

static bool is_bind(const jval *m) {
  const char *type = json_str(m, "type");
  if (type && !strcmp(type, "bind")) return true;
  const jval *opts = json_get(m, "options");
  for (const jval *o = opts ? opts->child : NULL; o; o = o->next)
    if (o->type == J_STR && (!strcmp(o->str, "bind") || !strcmp(o->str, "rbind"))) return true;
  return false;
}

void rootfs_prepare(const jval *cfg, const char *bundle, const int *idmapped, size_t nidmapped) {
  idmap_request requests[256];
  size_t nrequests = rootfs_idmap_requests(cfg, requests, 256);
  const jval *linux_ = json_get(cfg, "linux"), *root = json_get(cfg, "root"), *ann = json_get(cfg, "annotations");
  const char *prop = json_str(linux_, "rootfsPropagation");
  unsigned long propagation = MS_REC | MS_PRIVATE;
  if (prop && !strcmp(prop, "rslave")) propagation = MS_REC | MS_SLAVE;
  if (mount(NULL, "/", NULL, propagation, NULL) < 0) die("rootfs", "/", errno, "making the mount tree private");

  const char *rp = json_str(root, "path");
  if (!rp) die("spec", NULL, EINVAL, "root.path is missing");
  char rootpath[4096];
  if (rp[0] == '/') snprintf(rootpath, sizeof rootpath, "%s", rp);
  else snprintf(rootpath, sizeof rootpath, "%s/%s", bundle, rp);

  const char *lowerdirs = json_str(ann, ANNOTATION_LOWERDIRS);
  prepared.layered = lowerdirs != NULL;
  if (lowerdirs) {
    /* A tmpfs private to this mount namespace holds the writable layer: it is gone the moment the
     * sandbox's last process is. Its root belongs to the sandbox's root (uid=0 is read in our user
     * namespace), and one size caps everything written: the root's upper layer and the fresh dirs. */
    const char *size = json_str(ann, ANNOTATION_UPPER_SIZE);
    char data[128];
    snprintf(data, sizeof data, "mode=0755,uid=0,gid=0%s%s", size ? ",size=" : "", size ? size : "");
    if (mount("vtc-scratch", rootpath, "tmpfs", MS_NOSUID | MS_NODEV, data) < 0) die("rootfs", rootpath, errno, "mounting the scratch tmpfs");
    char **lowers = split(lowerdirs, ':');
    if (!lowers[0]) die("overlay", NULL, EINVAL, "no lower layers");
    for (char **l = lowers; *l; l++) prepared.nlowers++;
    prepared.lowers = calloc((size_t)prepared.nlowers, sizeof(int));
    prepared.lower_idmapped = calloc((size_t)prepared.nlowers, sizeof(bool));
    for (int i = 0; i < prepared.nlowers; i++) {
      for (size_t r = 0; r < nrequests && r < nidmapped; r++)
        if (requests[r].layer == i && idmapped[r] >= 0) { prepared.lowers[i] = idmapped[r]; prepared.lower_idmapped[i] = true; }
      if (prepared.lower_idmapped[i]) continue;
      prepared.lowers[i] = open(lowers[i], O_PATH | O_DIRECTORY | O_CLOEXEC);
      if (prepared.lowers[i] < 0) die("overlay", lowers[i], errno, "a lower layer is missing or not accessible");
    }
  } else if (mount(rootpath, rootpath, NULL, MS_BIND | MS_REC, NULL) < 0) {
    die("rootfs", rootpath, errno, "binding the root filesystem");
  }
  /* Opened after the mount above, so the path walk lands on the mount, not the directory under it. */
  prepared.scratch = open(rootpath, O_PATH | O_DIRECTORY | O_CLOEXEC);
  if (prepared.scratch < 0) die("rootfs", rootpath, errno, "opening the root filesystem");

  const jval *mounts = json_get(cfg, "mounts");
  prepared.nsources = (int)json_len(mounts);
  prepared.sources = calloc((size_t)prepared.nsources + 1, sizeof(int));
  prepared.source_idmapped = calloc((size_t)prepared.nsources + 1, sizeof(bool));
  int i = 0;
  for (const jval *m = mounts ? mounts->child : NULL; m; m = m->next, i++) {
    prepared.sources[i] = -1;
    if (!is_bind(m)) continue;
    for (size_t r = 0; r < nrequests && r < nidmapped; r++)
      if (requests[r].mount == i && idmapped[r] >= 0) { prepared.sources[i] = idmapped[r]; prepared.source_idmapped[i] = true; }
    if (prepared.source_idmapped[i]) continue;
    const char *source = json_str(m, "source");
    if (!source) die("mount", json_str(m, "destination"), EINVAL, "bind mount without a source");
    prepared.sources[i] = open(source, O_PATH | O_CLOEXEC);
    if (prepared.sources[i] < 0) die("mount", source, errno, "bind mount source is missing");
  }
}

/* The scratch tmpfs stays open in pid 1 when it holds the writable layer: after pivot_root it is
 * reachable by no path, and a commit reads the layer (upper/) through this descriptor. Who may open
 * /proc/<pid 1>/fd/N: started by root, nobody in the sandbox (pid 1 is not dumpable); rootless, the
 * sandbox's root, who owns everything on it anyway (idmapped image layers, which it must not reach,
 * are only ever made for sandboxes started by root). */
static void close_prepared(void) {
  if (!prepared.layered || prepared.composed) {
    close(prepared.scratch);
    prepared.scratch = -1;
  }
  for (int i = 0; i < prepared.nlowers; i++) close(prepared.lowers[i]);
  for (int i = 0; i < prepared.nsources; i++)
    if (prepared.sources[i] >= 0) close(prepared.sources[i]);
}

/* Directories that start empty on the scratch tmpfs (e.g. /tmp: its writes share the writable layer's size cap). */
static void mount_fresh_dirs(const jval *cfg, int rootfd) {
  const char *list = json_str(json_get(cfg, "annotations"), ANNOTATION_FRESH_DIRS);
  if (!list || !prepared.layered) return;
  if (mkdirat(prepared.scratch, "fresh", 0755) < 0 && errno != EEXIST) die("rootfs", "fresh", errno, "mkdir");
  char **dirs = split(list, ',');
  for (int i = 0; dirs[i]; i++) {
    char name[32], held[96], target[64];
    snprintf(name, sizeof name, "fresh/%d", i);
    if (mkdirat(prepared.scratch, name, 01777) < 0 || fchmodat(prepared.scratch, name, 01777, 0) < 0) die("rootfs", dirs[i], errno, "making a fresh directory");
    snprintf(held, sizeof held, "/proc/self/fd/%d/%s", prepared.scratch, name);
    int fd = open_in_root(rootfd, dirs[i], true);
    if (fd < 0) die("mount", dirs[i], errno, "cannot create the mount point in the root filesystem");
    fd_path(fd, target, sizeof target);
    if (mount(held, target, NULL, MS_BIND, NULL) < 0) die("mount", dirs[i], errno, "binding a fresh directory");
    close(fd);
  }
}

void rootfs_setup(const jval *cfg, bool in_userns) {
  const jval *ann = json_get(cfg, "annotations");
  char scratch[64], newroot[96];
  fd_path(prepared.scratch, scratch, sizeof scratch);
  snprintf(newroot, sizeof newroot, "%s", scratch);
  if (prepared.layered) {
    char upper[96], work[96];
    snprintf(upper, sizeof upper, "%s/upper", scratch);
    snprintf(work, sizeof work, "%s/work", scratch);
    snprintf(newroot, sizeof newroot, "%s/merged", scratch);
    if (mkdirat(prepared.scratch, "upper", 0755) < 0 || mkdirat(prepared.scratch, "work", 0700) < 0 || mkdirat(prepared.scratch, "merged", 0755) < 0)
      die("rootfs", "scratch", errno, "mkdir");
    char **lowers = calloc((size_t)prepared.nlowers + 1, sizeof(char *));
    for (int i = 0; i < prepared.nlowers; i++) {
      lowers[i] = malloc(96);
      if (!prepared.lower_idmapped[i]) {
        fd_path(prepared.lowers[i], lowers[i], 96);
        continue;
      }
      /* A detached mount: attached on the scratch tmpfs first, where overlay takes it by path on every kernel. */
      char name[32];
      snprintf(name, sizeof name, "layer-%d", i);
      snprintf(lowers[i], 96, "%s/%s", scratch, name);
      if (mkdirat(prepared.scratch, name, 0755) < 0) die("overlay", name, errno, "mkdir");
      if (syscall(SYS_move_mount, prepared.lowers[i], "", AT_FDCWD, lowers[i], VTC_MOVE_MOUNT_F_EMPTY_PATH) < 0)
        die("overlay", name, errno, "attaching an idmapped image layer");
    }
    const char *optstr = json_str(ann, ANNOTATION_OVERLAY_OPTIONS);
    char **opts = split(optstr ? optstr : "", ',');
    const char *compose = json_str(ann, ANNOTATION_COMPOSE);
    if (compose && (!strcmp(compose, "toplevel") || !strcmp(compose, "toplevel-readonly"))) {
      prepared.composed = true;
      if (prepared.nlowers != 1) die("overlay", NULL, EINVAL, "compose=toplevel takes exactly one lower directory");
      /* The merged root itself is part of the scratch tmpfs. The live tree is walked by its path. */
      compose_toplevel(cfg, split(json_str(ann, ANNOTATION_LOWERDIRS), ':')[0], scratch, newroot, opts, !strcmp(compose, "toplevel-readonly"));
      if (mount(newroot, newroot, NULL, MS_BIND | MS_REC, NULL) < 0) die("rootfs", newroot, errno, "binding the composed root");
    } else if (!mount_overlay_fsconfig(lowers, upper, work, opts, newroot)) {
      mount_overlay_classic(lowers, upper, work, opts, newroot);
    }
  }

  int rootfd = open(newroot, O_PATH | O_DIRECTORY | O_CLOEXEC);
  if (rootfd < 0) die("rootfs", newroot, errno, "opening the root filesystem");
  mount_fresh_dirs(cfg, rootfd);
  bool dev_tmpfs = false;
  const jval *mounts = json_get(cfg, "mounts");
  int i = 0;
  for (const jval *m = mounts ? mounts->child : NULL; m; m = m->next, i++) {
    do_mount(rootfd, m, prepared.sources[i], prepared.source_idmapped[i], in_userns);
    const char *d = json_str(m, "destination"), *t = json_str(m, "type");
    if (d && t && !strcmp(d, "/dev") && !strcmp(t, "tmpfs")) dev_tmpfs = true;
  }
  if (dev_tmpfs) populate_dev(rootfd);

  if (chdir(newroot) < 0) die("rootfs", newroot, errno, "chdir");
  if (syscall(SYS_pivot_root, ".", ".") < 0) die("rootfs", newroot, errno, "pivot_root");
  /* The old root is stacked under the new one: detach it so no host path is reachable. */
  if (umount2(".", MNT_DETACH) < 0) die("rootfs", "/", errno, "detaching the old root");
  if (chdir("/") < 0) die("rootfs", "/", errno, "chdir /");
  close(rootfd);
  /* pid 1 never execs: no fd of the host's tree may stay open in it. */
  close_prepared();
}

int rootfs_scratch_fd(void) { return prepared.scratch; }

void rootfs_finish(const jval *cfg) {
  const jval *linux_ = json_get(cfg, "linux");
  const jval *masked = json_get(linux_, "maskedPaths"), *ro = json_get(linux_, "readonlyPaths");
  if (masked)
    for (const jval *m = masked->child; m; m = m->next) {
      struct stat st;
      if (m->type != J_STR || lstat(m->str, &st) < 0) continue;
      int r = S_ISDIR(st.st_mode) ? mount("tmpfs", m->str, "tmpfs", MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC, "size=0")
                                  : mount("/dev/null", m->str, NULL, MS_BIND, NULL);
      if (r < 0) die("mount", m->str, errno, "masking a path");
    }
  if (ro)
    for (const jval *m = ro->child; m; m = m->next) {
      if (m->type != J_STR || access(m->str, F_OK) < 0) continue;
      if (mount(m->str, m->str, NULL, MS_BIND | MS_REC, NULL) < 0) die("mount", m->str, errno, "binding a read-only path");
      make_readonly_recursive(m->str, m->str);
    }
  if (json_bool(json_get(cfg, "root"), "readonly", false)) remount_with("/", MS_RDONLY, "/");
}

void loopback_up(void) {
  int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (s < 0) die("network", "lo", errno, "socket");
  struct ifreq ifr;
  memset(&ifr, 0, sizeof ifr);
  strcpy(ifr.ifr_name, "lo");
  if (ioctl(s, SIOCGIFFLAGS, &ifr) < 0) die("network", "lo", errno, "SIOCGIFFLAGS");
  ifr.ifr_flags |= IFF_UP | IFF_RUNNING;
  if (ioctl(s, SIOCSIFFLAGS, &ifr) < 0) die("network", "lo", errno, "bringing lo up");
  close(s);
}
