#include "runtime.h"
#include <sys/stat.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

static int status_fd = -1;

void report_init(int fd) { status_fd = fd; }
int report_fd(void) { return status_fd; }

const char *json_escape(const char *s, char *buf, size_t len) {
  size_t o = 0;
  for (; s && *s && o + 7 < len; s++) {
    unsigned char c = (unsigned char)*s;
    if (c == '"' || c == '\\') { buf[o++] = '\\'; buf[o++] = (char)c; }
    else if (c < 0x20) o += (size_t)snprintf(buf + o, len - o, "\\u%04x", c);
    else buf[o++] = (char)c;
  }
  buf[o] = 0;
  return buf;
}

static void write_all(int fd, const char *buf, size_t n) {
  while (n > 0) {
    ssize_t w = write(fd, buf, n);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return;
    buf += w;
    n -= (size_t)w;
  }
}

void report_event(const char *type, const char *extra_fmt, ...) {
  if (status_fd < 0) return;
  char extra[3072] = "", line[4096];
  if (extra_fmt) {
    va_list ap;
    va_start(ap, extra_fmt);
    vsnprintf(extra, sizeof extra, extra_fmt, ap);
    va_end(ap);
  }
  int n = snprintf(line, sizeof line, "{\"type\":\"%s\"%s}\n", type, extra);
  if (n > 0) write_all(status_fd, line, (size_t)n < sizeof line ? (size_t)n : sizeof line - 1);
}

void die(const char *stage, const char *path, int err, const char *fmt, ...) {
  char msg[1024], emsg[2100], epath[2100];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  if (status_fd >= 0)
    report_event("error", ",\"stage\":\"%s\",\"path\":\"%s\",\"errno\":%d,\"code\":\"%s\",\"message\":\"%s\"", stage,
                 json_escape(path ? path : "", epath, sizeof epath), err, err ? strerrorname_np(err) ?: "" : "",
                 json_escape(msg, emsg, sizeof emsg));
  else
    fprintf(stderr, "vtc-runtime: %s: %s%s%s%s%s\n", stage, msg, path ? " " : "", path ? path : "", err ? ": " : "",
            err ? strerror(err) : "");
  _exit(EXIT_RUNTIME_ERROR);
}

static int cmp_int(const void *a, const void *b) { return *(const int *)a - *(const int *)b; }

void keep_only_fds(const int *keep, int n) {
  int sorted[400], m = 0;
  for (int i = 0; i < n && m < 400; i++)
    if (keep[i] > 2) sorted[m++] = keep[i];
  qsort(sorted, (size_t)m, sizeof *sorted, cmp_int);
  unsigned int from = 3;
  for (int i = 0; i < m; i++) {
    if ((unsigned)sorted[i] > from) syscall(SYS_close_range, from, (unsigned)sorted[i] - 1, 0);
    from = (unsigned)sorted[i] + 1;
  }
  syscall(SYS_close_range, from, ~0U, 0);
}

char *read_file(const char *path, size_t max) {
  FILE *f = fopen(path, "re");
  if (!f) return NULL;
  char *buf = malloc(max + 1);
  if (!buf) { fclose(f); return NULL; }
  size_t n = fread(buf, 1, max, f);
  buf[n] = 0;
  fclose(f);
  return buf;
}

char **json_str_array(const jval *arr) {
  size_t n = json_len(arr), i = 0;
  char **out = calloc(n + 1, sizeof *out);
  if (!out) die("spec", NULL, ENOMEM, "out of memory");
  if (arr)
    for (jval *c = arr->child; c; c = c->next) {
      if (c->type != J_STR) die("spec", NULL, 0, "expected an array of strings");
      out[i++] = c->str;
    }
  return out;
}

bool same_namespace(pid_t a, pid_t b, const char *ns) {
  char pa[64], pb[64];
  struct stat sa, sb;
  if (a) snprintf(pa, sizeof pa, "/proc/%d/ns/%s", a, ns); else snprintf(pa, sizeof pa, "/proc/self/ns/%s", ns);
  if (b) snprintf(pb, sizeof pb, "/proc/%d/ns/%s", b, ns); else snprintf(pb, sizeof pb, "/proc/self/ns/%s", ns);
  return stat(pa, &sa) == 0 && stat(pb, &sb) == 0 && sa.st_ino == sb.st_ino && sa.st_dev == sb.st_dev;
}
