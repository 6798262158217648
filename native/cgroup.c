/* Joining the cgroup the TypeScript side prepared; creating it and setting its
 * limits is policy and lives in src/runtime/cgroups/. */
#include "runtime.h"
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

int cgroup_open_v2(const char *path) {
  if (access("/sys/fs/cgroup/cgroup.controllers", F_OK) < 0) return -1;
  char dir[4096];
  snprintf(dir, sizeof dir, "/sys/fs/cgroup/%s", path);
  int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) die("cgroup", dir, errno, "opening the sandbox's cgroup");
  return fd;
}

void cgroup_join_v1(const char *path, pid_t pid) {
  DIR *d = opendir("/sys/fs/cgroup");
  if (!d) die("cgroup", "/sys/fs/cgroup", errno, "listing cgroup hierarchies");
  struct dirent *e;
  char procs[4400], buf[32];
  int n = snprintf(buf, sizeof buf, "%d", pid);
  while ((e = readdir(d))) {
    if (e->d_name[0] == '.') continue;
    snprintf(procs, sizeof procs, "/sys/fs/cgroup/%s/%s/cgroup.procs", e->d_name, path);
    int fd = open(procs, O_WRONLY | O_CLOEXEC);
    if (fd < 0) {
      if (errno == ENOENT || errno == ENOTDIR) continue;
      die("cgroup", procs, errno, "opening cgroup.procs");
    }
    if (write(fd, buf, (size_t)n) != n) die("cgroup", procs, errno, "joining the sandbox's cgroup");
    close(fd);
  }
  closedir(d);
}
