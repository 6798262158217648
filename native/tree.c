/* A file tree as a stream of records, and a stream of records back into a tree: what
 * `vtc-runtime tree` uses for a sandbox's commit (its writable layer, read), copyFrom (a path,
 * read) and copyTo (a path, written). The TypeScript side decides what the entries mean
 * (overlay whiteouts, which owners, which entries are acceptable: src/runtime/tree-stream.ts);
 * this file only reads and writes them, never through a symlink.
 *
 * One record per entry, little-endian: a 64-byte header, then the path, the link target,
 * the xattrs, then `size` bytes of data (regular files only).
 *
 *    0 u32 magic "VTCE"       4 u8 kind ('d' 'f' 'l' 'h' 'c' 'b' 'p' 's'; 'Z' ends the stream)
 *    5 u8 flags (1: the file's data is not in the stream but in the stage directory, as the file named by `stage`)
 *    8 u32 st_mode           12 u32 uid            16 u32 gid
 *   20 u32 rdev major        24 u32 rdev minor     28 u32 mtime nanoseconds
 *   32 i64 mtime seconds     40 u64 size
 *   48 u32 path length       52 u32 link length    56 u32 xattr bytes       60 u32 stage
 *
 * Paths are relative to the tree's root ("" is the root itself), '/'-separated. `link` is a
 * symlink's target, or for 'h' (a hard link) the path of the earlier entry it links to. The
 * xattr block is a list of (u32 name length, u32 value length, name, value). */
#include "runtime.h"
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#define RECORD_MAGIC 0x45435456u /* "VTCE" */
#define HEADER_SIZE 64
#define MAX_PATH 4096
#define MAX_DEPTH 256
#define MAX_XATTRS (64 * 1024)

/* ---------- output ---------- */

static int out_fd = 1;
/* With a stage directory (a commit): each regular file's data is copied there instead of being sent, as
 * files named 1, 2, ... (names of our own, in a directory only we write): the caller moves them into place
 * rather than writing them again, and hashes them from there. */
static int stage_fd = -1;
static uint32_t staged;
static unsigned char outbuf[1 << 18];
static size_t outlen;

static void write_fully(int fd, const void *p, size_t n) {
  const unsigned char *b = p;
  while (n) {
    ssize_t w = write(fd, b, n);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) die("tree", NULL, errno ? errno : EPIPE, "writing the stream");
    b += w;
    n -= (size_t)w;
  }
}

static void flush_out(void) {
  write_fully(out_fd, outbuf, outlen);
  outlen = 0;
}

static void put(const void *p, size_t n) {
  if (outlen + n > sizeof outbuf) flush_out();
  if (n > sizeof outbuf) { write_fully(out_fd, p, n); return; }
  memcpy(outbuf + outlen, p, n);
  outlen += n;
}

static void le32(unsigned char *b, uint32_t v) { for (int i = 0; i < 4; i++) b[i] = (unsigned char)(v >> (8 * i)); }
static void le64(unsigned char *b, uint64_t v) { for (int i = 0; i < 8; i++) b[i] = (unsigned char)(v >> (8 * i)); }
static uint32_t rd32(const unsigned char *b) { return (uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 | (uint32_t)b[3] << 24; }
static uint64_t rd64(const unsigned char *b) { return (uint64_t)rd32(b) | (uint64_t)rd32(b + 4) << 32; }

static void put_header_staged(char kind, const struct stat *st, uint64_t size, const char *path, size_t pathlen,
                              const char *link, size_t linklen, const unsigned char *xattrs, size_t xlen, uint32_t stage) {
  unsigned char h[HEADER_SIZE] = {0};
  le32(h, RECORD_MAGIC);
  h[4] = (unsigned char)kind;
  if (stage) {
    h[5] = 1;
    le32(h + 60, stage);
  }
  if (st) {
    le32(h + 8, st->st_mode);
    le32(h + 12, st->st_uid);
    le32(h + 16, st->st_gid);
    le32(h + 20, major(st->st_rdev));
    le32(h + 24, minor(st->st_rdev));
    le32(h + 28, (uint32_t)st->st_mtim.tv_nsec);
    le64(h + 32, (uint64_t)st->st_mtim.tv_sec);
  }
  le64(h + 40, size);
  le32(h + 48, (uint32_t)pathlen);
  le32(h + 52, (uint32_t)linklen);
  le32(h + 56, (uint32_t)xlen);
  put(h, sizeof h);
  put(path, pathlen);
  if (linklen) put(link, linklen);
  if (xlen) put(xattrs, xlen);
}

static void put_header(char kind, const struct stat *st, uint64_t size, const char *path, size_t pathlen,
                       const char *link, size_t linklen, const unsigned char *xattrs, size_t xlen) {
  put_header_staged(kind, st, size, path, pathlen, link, linklen, xattrs, xlen, 0);
}

/* Every xattr of an open file or directory the caller may read, as a record's block. */
static size_t read_xattrs(int fd, unsigned char *block, size_t cap) {
  char names[MAX_XATTRS];
  ssize_t n = flistxattr(fd, names, sizeof names);
  if (n <= 0) return 0;
  size_t used = 0;
  for (char *name = names; name < names + n; name += strlen(name) + 1) {
    unsigned char value[MAX_XATTRS];
    ssize_t v = fgetxattr(fd, name, value, sizeof value);
    size_t nl = strlen(name);
    if (v < 0 || used + 8 + nl + (size_t)v > cap) continue; /* gone meanwhile, or too large to carry */
    le32(block + used, (uint32_t)nl);
    le32(block + used + 4, (uint32_t)v);
    memcpy(block + used + 8, name, nl);
    memcpy(block + used + 8 + nl, value, (size_t)v);
    used += 8 + nl + (size_t)v;
  }
  return used;
}

/* ---------- reading a tree ---------- */

typedef struct { dev_t dev; ino_t ino; char *path; } seen_link;
static seen_link *links;
static size_t nlinks, caplinks;

static const char *earlier_link(const struct stat *st) {
  for (size_t i = 0; i < nlinks; i++)
    if (links[i].dev == st->st_dev && links[i].ino == st->st_ino) return links[i].path;
  return NULL;
}

static void remember_link(const struct stat *st, const char *path) {
  if (nlinks == caplinks) {
    caplinks = caplinks ? caplinks * 2 : 64;
    links = realloc(links, caplinks * sizeof *links);
    if (!links) die("tree", NULL, ENOMEM, "out of memory");
  }
  links[nlinks++] = (seen_link){ st->st_dev, st->st_ino, strdup(path) };
}

static void write_to(int fd, const char *buf, size_t n, const char *path) {
  for (size_t o = 0; o < n;) {
    ssize_t w = write(fd, buf + o, n - o);
    if (w < 0 && errno == EINTR) continue;
    if (w < 0) die("tree", path, errno, "writing a staged file");
    o += (size_t)w;
  }
}

/* A file's `size` bytes to the stream. */
static void emit_file_data(int fd, const char *path, uint64_t size) {
  static char buf[1 << 20];
  uint64_t done = 0;
  while (done < size) {
    size_t want = size - done < sizeof buf ? (size_t)(size - done) : sizeof buf;
    ssize_t n = read(fd, buf, want);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) die("tree", path, errno, "reading a file");
    if (n == 0) {
      /* Truncated while we read it: the record promised `size` bytes, the rest reads as zeros. */
      memset(buf, 0, want);
      n = (ssize_t)want;
    }
    flush_out();
    write_fully(out_fd, buf, (size_t)n);
    done += (uint64_t)n;
  }
}

/* Up to `size` bytes of fd into the stage file (in the kernel, without a copy through us where it can);
 * returns how many: fewer when the file was truncated meanwhile. */
static uint64_t stage_file_data(int fd, int stage, const char *path, uint64_t size) {
  uint64_t done = 0;
  bool in_kernel = true;
  static char buf[1 << 20];
  while (done < size) {
    size_t want = size - done < (1u << 30) ? (size_t)(size - done) : (1u << 30);
    ssize_t n;
    if (in_kernel) {
      n = copy_file_range(fd, NULL, stage, NULL, want, 0);
      if (n < 0 && (errno == EXDEV || errno == EINVAL || errno == ENOSYS || errno == EOPNOTSUPP)) { in_kernel = false; continue; }
    } else {
      n = read(fd, buf, want < sizeof buf ? want : sizeof buf);
      if (n > 0) write_to(stage, buf, (size_t)n, path);
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) die("tree", path, errno, "copying a file to the stage directory");
    if (n == 0) break;
    done += (uint64_t)n;
  }
  return done;
}

/* A new file of the stage directory, or -1 without one. */
static int open_stage_file(uint32_t *name, const char *path) {
  if (stage_fd < 0) return -1;
  char leaf[16];
  *name = ++staged;
  snprintf(leaf, sizeof leaf, "%u", *name);
  int fd = openat(stage_fd, leaf, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
  if (fd < 0) die("tree", path, errno, "creating a staged file");
  return fd;
}

static int cmp_names(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

static void walk_dir(int dirfd, char *path, size_t pathlen, dev_t root_dev, bool one_fs, int depth);

/* One entry of dirfd (name), whose path in the tree is path[0..pathlen). */
static void emit_child(int dirfd, const char *name, char *path, size_t pathlen, dev_t root_dev, bool one_fs, int depth) {
  struct stat st;
  if (fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0) {
    if (errno == ENOENT) return; /* removed while we walked */
    die("tree", path, errno, "stat");
  }
  static unsigned char xattrs[MAX_XATTRS];
  if (S_ISDIR(st.st_mode)) {
    int fd = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) {
      if (errno == ENOENT || errno == ENOTDIR || errno == ELOOP) return; /* replaced meanwhile */
      die("tree", path, errno, "opening a directory");
    }
    if (fstat(fd, &st) < 0) die("tree", path, errno, "stat");
    size_t xlen = read_xattrs(fd, xattrs, sizeof xattrs);
    put_header('d', &st, 0, path, pathlen, NULL, 0, xattrs, xlen);
    /* A mount point below the root is listed, not entered (tar --one-file-system). */
    if (!one_fs || st.st_dev == root_dev) walk_dir(fd, path, pathlen, root_dev, one_fs, depth + 1);
    close(fd);
    return;
  }
  if (S_ISREG(st.st_mode)) {
    if (st.st_nlink > 1) {
      const char *first = earlier_link(&st);
      if (first) {
        put_header('h', &st, 0, path, pathlen, first, strlen(first), NULL, 0);
        return;
      }
    }
    /* O_NONBLOCK: should a FIFO have taken its place meanwhile, the open must not wait for a writer. */
    int fd = openat(dirfd, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
    if (fd < 0) {
      if (errno == ENOENT || errno == ELOOP) return;
      die("tree", path, errno, "opening a file");
    }
    if (fstat(fd, &st) < 0) die("tree", path, errno, "stat");
    if (!S_ISREG(st.st_mode)) { close(fd); return; } /* replaced by something else meanwhile */
    size_t xlen = read_xattrs(fd, xattrs, sizeof xattrs);
    uint32_t name = 0;
    int stage = st.st_size > 0 ? open_stage_file(&name, path) : -1;
    if (stage >= 0) {
      /* Said once the copy is whole: the caller may read and move it as soon as it hears of it. */
      uint64_t copied = stage_file_data(fd, stage, path, (uint64_t)st.st_size);
      if (close(stage) < 0) die("tree", path, errno, "closing a staged file");
      put_header_staged('f', &st, copied, path, pathlen, NULL, 0, xattrs, xlen, name);
      flush_out(); /* the caller hashes this one while we copy the next */
    } else {
      put_header('f', &st, (uint64_t)st.st_size, path, pathlen, NULL, 0, xattrs, xlen);
      emit_file_data(fd, path, (uint64_t)st.st_size);
    }
    if (st.st_nlink > 1) remember_link(&st, path);
    close(fd);
    return;
  }
  if (S_ISLNK(st.st_mode)) {
    char target[MAX_PATH];
    ssize_t n = readlinkat(dirfd, name, target, sizeof target);
    if (n < 0) {
      if (errno == ENOENT || errno == EINVAL) return;
      die("tree", path, errno, "readlink");
    }
    if ((size_t)n >= sizeof target) die("tree", path, ENAMETOOLONG, "symlink target");
    put_header('l', &st, 0, path, pathlen, target, (size_t)n, NULL, 0);
    return;
  }
  char kind = S_ISCHR(st.st_mode) ? 'c' : S_ISBLK(st.st_mode) ? 'b' : S_ISFIFO(st.st_mode) ? 'p' : 's';
  put_header(kind, &st, 0, path, pathlen, NULL, 0, NULL, 0);
}

static void walk_dir(int dirfd, char *path, size_t pathlen, dev_t root_dev, bool one_fs, int depth) {
  if (depth > MAX_DEPTH) die("tree", path, ELOOP, "directories nested deeper than %d levels", MAX_DEPTH);
  int fd = dup(dirfd);
  DIR *d = fd < 0 ? NULL : fdopendir(fd);
  if (!d) die("tree", path, errno, "listing a directory");
  char **names = NULL;
  size_t n = 0, cap = 0;
  struct dirent *e;
  while ((e = readdir(d))) {
    if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
    if (n == cap) {
      cap = cap ? cap * 2 : 32;
      names = realloc(names, cap * sizeof *names);
      if (!names) die("tree", path, ENOMEM, "out of memory");
    }
    names[n++] = strdup(e->d_name);
  }
  closedir(d);
  /* Sorted: the same tree always gives the same stream (and so the same layer digest). */
  qsort(names, n, sizeof *names, cmp_names);
  for (size_t i = 0; i < n; i++) {
    size_t len = strlen(names[i]), at = pathlen ? pathlen + 1 : 0;
    if (at + len >= MAX_PATH) die("tree", path, ENAMETOOLONG, "a path in the tree is longer than %d bytes", MAX_PATH);
    if (pathlen) path[pathlen] = '/';
    memcpy(path + at, names[i], len + 1);
    emit_child(dirfd, names[i], path, at + len, root_dev, one_fs, depth);
    path[pathlen] = 0;
    free(names[i]);
  }
  free(names);
}

void tree_emit(int rootfd, bool one_file_system, int out, int stage) {
  out_fd = out;
  stage_fd = stage;
  struct stat st;
  if (fstat(rootfd, &st) < 0) die("tree", NULL, errno, "stat");
  static unsigned char xattrs[MAX_XATTRS];
  static char path[MAX_PATH];
  path[0] = 0;
  if (S_ISDIR(st.st_mode)) {
    int fd = openat(rootfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) die("tree", NULL, errno, "opening the directory");
    put_header('d', &st, 0, path, 0, NULL, 0, xattrs, read_xattrs(fd, xattrs, sizeof xattrs));
    walk_dir(fd, path, 0, st.st_dev, one_file_system, 0);
    close(fd);
  } else if (S_ISREG(st.st_mode)) {
    put_header('f', &st, (uint64_t)st.st_size, path, 0, NULL, 0, xattrs, read_xattrs(rootfd, xattrs, sizeof xattrs));
    emit_file_data(rootfd, "", (uint64_t)st.st_size);
  } else {
    char kind = S_ISCHR(st.st_mode) ? 'c' : S_ISBLK(st.st_mode) ? 'b' : S_ISFIFO(st.st_mode) ? 'p' : 's';
    put_header(kind, &st, 0, path, 0, NULL, 0, NULL, 0);
  }
  put_header('Z', NULL, 0, "", 0, NULL, 0, NULL, 0);
  flush_out();
}

/* ---------- writing a tree ---------- */

static int in_fd = 0;

static bool read_fully(void *p, size_t n, bool eof_ok) {
  unsigned char *b = p;
  size_t got = 0;
  while (got < n) {
    ssize_t r = read(in_fd, b + got, n - got);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) die("tree", NULL, errno, "reading the stream");
    if (r == 0) {
      if (eof_ok && got == 0) return false;
      die("tree", NULL, EPIPE, "the stream ends in the middle of an entry");
    }
    got += (size_t)r;
  }
  return true;
}

/* Opens path's parent below dest, never through a symlink nor out of dest. */
static int open_parent(int destfd, const char *path, const char **leaf) {
  const char *slash = strrchr(path, '/');
  *leaf = slash ? slash + 1 : path;
  if (!slash) return dup(destfd);
  char parent[MAX_PATH];
  memcpy(parent, path, (size_t)(slash - path));
  parent[slash - path] = 0;
  struct open_how how = { .flags = O_PATH | O_DIRECTORY | O_CLOEXEC,
                          .resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS };
  int fd = (int)syscall(SYS_openat2, destfd, parent, &how, sizeof how);
  if (fd < 0) die("tree", path, errno, errno == ELOOP ? "a parent directory is a symlink (entries are never written through one)" : "opening the parent directory");
  return fd;
}

static bool safe_relative(const char *path) {
  if (!*path || path[0] == '/') return false;
  for (const char *p = path; *p;) {
    const char *end = strchrnul(p, '/');
    size_t len = (size_t)(end - p);
    if (len == 0 || (len == 1 && p[0] == '.') || (len == 2 && p[0] == '.' && p[1] == '.')) return false;
    p = *end ? end + 1 : end;
  }
  return true;
}

/* What is at leaf goes, unless it is a directory (only a directory may stay a directory). */
static void clear_leaf(int parent, const char *leaf, const char *path, bool keep_dir) {
  struct stat st;
  if (fstatat(parent, leaf, &st, AT_SYMLINK_NOFOLLOW) < 0) return;
  if (S_ISDIR(st.st_mode)) {
    if (keep_dir) return;
    die("tree", path, EISDIR, "a directory is in the way");
  }
  if (unlinkat(parent, leaf, 0) < 0) die("tree", path, errno, "replacing what was there");
}

static void apply_meta(int parent, const char *leaf, int fd, const char *path, uint32_t mode, uint32_t uid, uint32_t gid,
                       const unsigned char *xattrs, size_t xlen, const struct timespec *mtime) {
  /* chown first: it clears setuid bits, which chmod then sets. */
  int r = fd >= 0 ? fchown(fd, uid, gid) : fchownat(parent, leaf, uid, gid, AT_SYMLINK_NOFOLLOW);
  if (r < 0) die("tree", path, errno, errno == EINVAL ? "owner %u:%u is not mapped in this sandbox" : "chown %u:%u", uid, gid);
  if (fd >= 0 && fchmod(fd, mode & 07777) < 0) die("tree", path, errno, "chmod");
  for (size_t o = 0; fd >= 0 && o + 8 <= xlen;) {
    uint32_t nl = rd32(xattrs + o), vl = rd32(xattrs + o + 4);
    if (o + 8 + nl + vl > xlen || nl >= 256) die("tree", path, EINVAL, "malformed xattr block");
    char name[256];
    memcpy(name, xattrs + o + 8, nl);
    name[nl] = 0;
    if (fsetxattr(fd, name, xattrs + o + 8 + nl, vl, 0) < 0) die("tree", path, errno, "setting xattr %s", name);
    o += 8 + nl + vl;
  }
  if (mtime) {
    struct timespec times[2] = { { 0, UTIME_OMIT }, *mtime };
    r = fd >= 0 ? futimens(fd, times) : utimensat(parent, leaf, times, AT_SYMLINK_NOFOLLOW);
    if (r < 0) die("tree", path, errno, "setting the modification time");
  }
}

typedef struct { char *path; struct timespec mtime; } dir_time;

void tree_apply(int destfd, int in) {
  in_fd = in;
  dir_time *dirs = NULL;
  size_t ndirs = 0, capdirs = 0;
  static char buf[1 << 20];
  static unsigned char xattrs[MAX_XATTRS];
  for (;;) {
    unsigned char h[HEADER_SIZE];
    if (!read_fully(h, sizeof h, true)) die("tree", NULL, EPIPE, "the stream ended without its end record");
    if (rd32(h) != RECORD_MAGIC) die("tree", NULL, EINVAL, "not an entry record");
    char kind = (char)h[4];
    if (kind == 'Z') break;
    uint32_t mode = rd32(h + 8), uid = rd32(h + 12), gid = rd32(h + 16);
    struct timespec mtime = { (time_t)rd64(h + 32), (long)rd32(h + 28) };
    uint64_t size = rd64(h + 40);
    uint32_t pathlen = rd32(h + 48), linklen = rd32(h + 52), xlen = rd32(h + 56);
    if (pathlen >= MAX_PATH || linklen >= MAX_PATH || xlen > sizeof xattrs || (kind != 'f' && size))
      die("tree", NULL, EINVAL, "malformed entry record");
    char path[MAX_PATH], link[MAX_PATH];
    read_fully(path, pathlen, false);
    path[pathlen] = 0;
    read_fully(link, linklen, false);
    link[linklen] = 0;
    read_fully(xattrs, xlen, false);
    if (!safe_relative(path)) die("tree", path, EINVAL, "an entry path must be relative, without . or .. components");
    const char *leaf;
    int parent = open_parent(destfd, path, &leaf);
    switch (kind) {
      case 'd': {
        clear_leaf(parent, leaf, path, true);
        if (mkdirat(parent, leaf, 0700) < 0 && errno != EEXIST) die("tree", path, errno, "mkdir");
        int fd = openat(parent, leaf, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0) die("tree", path, errno, "opening a directory");
        apply_meta(parent, leaf, fd, path, mode, uid, gid, xattrs, xlen, NULL);
        close(fd);
        /* Its time last: entries made in it would change it. */
        if (ndirs == capdirs) {
          capdirs = capdirs ? capdirs * 2 : 64;
          dirs = realloc(dirs, capdirs * sizeof *dirs);
          if (!dirs) die("tree", path, ENOMEM, "out of memory");
        }
        dirs[ndirs++] = (dir_time){ strdup(path), mtime };
        break;
      }
      case 'f': {
        clear_leaf(parent, leaf, path, false);
        int fd = openat(parent, leaf, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
        if (fd < 0) die("tree", path, errno, "creating a file");
        for (uint64_t done = 0; done < size;) {
          size_t want = size - done < sizeof buf ? (size_t)(size - done) : sizeof buf;
          read_fully(buf, want, false);
          for (size_t o = 0; o < want;) {
            ssize_t w = write(fd, buf + o, want - o);
            if (w < 0 && errno == EINTR) continue;
            if (w < 0) die("tree", path, errno, "writing a file");
            o += (size_t)w;
          }
          done += want;
        }
        apply_meta(parent, leaf, fd, path, mode, uid, gid, xattrs, xlen, &mtime);
        if (close(fd) < 0) die("tree", path, errno, "close");
        break;
      }
      case 'l':
        clear_leaf(parent, leaf, path, false);
        if (symlinkat(link, parent, leaf) < 0) die("tree", path, errno, "symlink");
        apply_meta(parent, leaf, -1, path, mode, uid, gid, NULL, 0, &mtime);
        break;
      case 'h': {
        if (!safe_relative(link)) die("tree", path, EINVAL, "a hard link must point to an entry of the same stream");
        const char *tleaf;
        int tparent = open_parent(destfd, link, &tleaf);
        clear_leaf(parent, leaf, path, false);
        if (linkat(tparent, tleaf, parent, leaf, 0) < 0) die("tree", path, errno, "link");
        close(tparent);
        break;
      }
      case 'p': {
        clear_leaf(parent, leaf, path, false);
        if (mknodat(parent, leaf, S_IFIFO | 0600, 0) < 0) die("tree", path, errno, "mkfifo");
        /* Opened (not waiting for a writer) so that its owner and mode are set on it, not on whatever a path names. */
        int fd = openat(parent, leaf, O_RDONLY | O_NONBLOCK | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0) die("tree", path, errno, "opening a fifo");
        apply_meta(parent, leaf, fd, path, mode, uid, gid, NULL, 0, &mtime);
        close(fd);
        break;
      }
      default:
        die("tree", path, EPERM, "device nodes and sockets are not written");
    }
    close(parent);
  }
  /* Deepest first, so that setting a parent's time comes after its children changed it. */
  for (size_t i = ndirs; i-- > 0;) {
    const char *leaf;
    int parent = open_parent(destfd, dirs[i].path, &leaf);
    struct timespec times[2] = { { 0, UTIME_OMIT }, dirs[i].mtime };
    if (utimensat(parent, leaf, times, AT_SYMLINK_NOFOLLOW) < 0 && errno != ENOENT) die("tree", dirs[i].path, errno, "setting a directory's time");
    close(parent);
    free(dirs[i].path);
  }
  free(dirs);
}
