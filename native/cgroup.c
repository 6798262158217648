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

/* The calling process moves itself into the sandbox's cgroup in every v1 hierarchy that has it.
 * It writes "0" to `tasks` (this thread), not its pid to `cgroup.procs`: moving a whole thread
 * group takes the kernel's cgroup_threadgroup_rwsem for writing, which waits for an RCU grace
 * period whenever no migration happened in the last few milliseconds (7-15 ms here, on most
 * starts of a test suite), while a thread moving itself skips that lock. Callers are
 * single-threaded, so the thread is the whole process. */
void cgroup_join_v1_self(const char *path) {
  DIR *d = opendir("/sys/fs/cgroup");
  if (!d) die("cgroup", "/sys/fs/cgroup", errno, "listing cgroup hierarchies");
  struct dirent *e;
  char tasks[4400];
  while ((e = readdir(d))) {
    if (e->d_name[0] == '.') continue;
    snprintf(tasks, sizeof tasks, "/sys/fs/cgroup/%s/%s/tasks", e->d_name, path);
    int fd = open(tasks, O_WRONLY | O_CLOEXEC);
    if (fd < 0) {
      if (errno == ENOENT || errno == ENOTDIR) continue;
      die("cgroup", tasks, errno, "opening the cgroup's tasks file");
    }
    if (write(fd, "0", 1) != 1) die("cgroup", tasks, errno, "joining the sandbox's cgroup");
    close(fd);
  }
  closedir(d);
}
