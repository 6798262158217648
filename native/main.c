/* vtc-runtime: run a sandbox from an OCI bundle, or exec into a running one.
 *
 *   vtc-runtime run  --bundle DIR [--control-fd N] [--status-fd N] [--preserve-fd N]
 *   vtc-runtime exec --pid PID [--cgroup PATH] [--seccomp FILE] [--status-fd N] PROCESS_JSON
 *   vtc-runtime file --pid PID (--read PATH | --write PATH [--mode OCTAL])
 *   vtc-runtime tree --pid PID (--upper FD [--stage DIR] [--hold] | --read PATH [--one-file-system] | --write PATH)
 *   vtc-runtime tree --write PATH                  (a host directory, as the caller)
 *   vtc-runtime spawner [--listen PATH --owner PID]   (starts the others for Node: see spawner.c)
 *   vtc-runtime features
 *
 * --connect PATH --token T [--stdin] (any command): instead of inheriting stdio
 * and the control/status fds from the caller, connect to the caller's unix
 * socket at PATH, saying "T out", "T err", "T ctl" (and "T in" with --stdin;
 * otherwise stdin is /dev/null): ctl carries control bytes in and status lines
 * out. With the spawner this lets a Node process start sandboxes without
 * forking itself.
 *
 * run: this process stays outside the sandbox as its monitor. It clones the
 * sandbox's pid 1 into new namespaces, writes its id maps, puts it in its
 * cgroup, and then waits. A byte N on the control fd delivers signal N to pid 1;
 * end-of-file on the control fd (the Node process died, even by SIGKILL) kills
 * the sandbox. Events go to the status fd as JSON lines. */
#include "runtime.h"
#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <linux/sched.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <sys/un.h>
#include <grp.h>
#include <sys/signalfd.h>
#include <spawn.h>
#include <unistd.h>

#ifndef CLONE_INTO_CGROUP
#define CLONE_INTO_CGROUP 0x200000000ULL
#endif
#ifndef P_PIDFD
#define P_PIDFD 3
#endif

static const struct { const char *type; int flag; } ns_types[] = {
  {"pid", CLONE_NEWPID}, {"network", CLONE_NEWNET}, {"mount", CLONE_NEWNS}, {"ipc", CLONE_NEWIPC},
  {"uts", CLONE_NEWUTS}, {"user", CLONE_NEWUSER}, {"cgroup", CLONE_NEWCGROUP},
};

static int connect_role(const char *path, const char *token, const char *role) {
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  struct sockaddr_un addr = { .sun_family = AF_UNIX };
  if (fd < 0 || strlen(path) >= sizeof addr.sun_path) die("connect", path, errno ? errno : ENAMETOOLONG, "socket");
  strcpy(addr.sun_path, path);
  if (connect(fd, (struct sockaddr *)&addr, sizeof addr) < 0) die("connect", path, errno, "connecting to the caller");
  char line[256];
  int n = snprintf(line, sizeof line, "%s %s\n", token, role);
  if (write(fd, line, (size_t)n) != n) die("connect", path, errno, "handshake");
  return fd;
}

/* Replaces stdio and the control/status channel with connections to the caller. Returns the ctl fd.
 * stdin is a connection of its own (or /dev/null): the caller writing to a process that already
 * ended must never cost it that process's unread output, as it would on a shared socket. */
static int connect_caller(const char *path, const char *token, bool stdin_from_caller) {
  int out = connect_role(path, token, "out"), err = connect_role(path, token, "err"), ctl = connect_role(path, token, "ctl");
  int in = stdin_from_caller ? connect_role(path, token, "in") : open("/dev/null", O_RDONLY);
  if (in < 0) die("connect", "/dev/null", errno, "stdin");
  if (dup2(in, 0) < 0 || dup2(out, 1) < 0 || dup2(err, 2) < 0) die("connect", path, errno, "dup2");
  close(in);
  close(out);
  close(err);
  return ctl;
}

static void usage(void) {
  fprintf(stderr, "usage: vtc-runtime run --bundle DIR [--control-fd N] [--status-fd N]\n"
                  "       vtc-runtime exec --pid PID [--cgroup PATH] [--status-fd N] PROCESS_JSON\n");
  exit(2);
}

static jval *parse_or_die(const char *text, const char *what) {
  char err[256];
  jval *v = json_parse(text, err, sizeof err);
  if (!v) die("spec", what, EINVAL, "%s", err);
  return v;
}

/* ---------- id maps ---------- */

static void format_map(const jval *maps, char *buf, size_t len, char ***argv_out) {
  size_t o = 0, n = json_len(maps), a = 0;
  char **argv = calloc(3 * n + 3, sizeof *argv);
  for (const jval *m = maps ? maps->child : NULL; m; m = m->next) {
    unsigned long c = (unsigned long)json_num(m, "containerID", 0), h = (unsigned long)json_num(m, "hostID", 0),
                  s = (unsigned long)json_num(m, "size", 0);
    o += (size_t)snprintf(buf + o, len - o, "%lu %lu %lu\n", c, h, s);
    asprintf(&argv[2 + a++], "%lu", c);
    asprintf(&argv[2 + a++], "%lu", h);
    asprintf(&argv[2 + a++], "%lu", s);
  }
  *argv_out = argv;
}

static void write_proc_file(pid_t pid, const char *name, const char *text) {
  char path[64];
  snprintf(path, sizeof path, "/proc/%d/%s", pid, name);
  int fd = open(path, O_WRONLY | O_CLOEXEC);
  if (fd < 0) die("userns", path, errno, "opening %s", name);
  ssize_t n = (ssize_t)strlen(text);
  if (write(fd, text, (size_t)n) != n) die("userns", path, errno, "writing %s", name);
  close(fd);
}

/* newuidmap/newgidmap are setuid helpers that grant /etc/subuid ranges. */
static void run_idmap_helper(const char *helper, pid_t pid, char **argv) {
  char pidbuf[16];
  snprintf(pidbuf, sizeof pidbuf, "%d", pid);
  argv[0] = (char *)helper;
  argv[1] = pidbuf;
  pid_t c = fork();
  if (c < 0) die("userns", helper, errno, "fork");
  if (c == 0) {
    int null = open("/dev/null", O_WRONLY);
    if (null >= 0) dup2(null, 1);
    execvp(helper, argv);
    _exit(127);
  }
  int status;
  while (waitpid(c, &status, 0) < 0 && errno == EINTR) {}
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
    die("userns", helper, WIFEXITED(status) && WEXITSTATUS(status) == 127 ? ENOENT : EPERM,
        "%s failed (exit %d): check /etc/subuid and /etc/subgid for this user", helper,
        WIFEXITED(status) ? WEXITSTATUS(status) : -1);
}

static bool single_self_map(const jval *maps, unsigned long self) {
  return json_len(maps) == 1 && json_num(maps->child, "size", 0) == 1 && (unsigned long)json_num(maps->child, "hostID", -1) == self;
}

static void write_id_maps(pid_t pid, const jval *linux_) {
  const jval *uids = json_get(linux_, "uidMappings"), *gids = json_get(linux_, "gidMappings");
  char ubuf[4096] = "", gbuf[4096] = "";
  char **uargv, **gargv;
  format_map(uids, ubuf, sizeof ubuf, &uargv);
  format_map(gids, gbuf, sizeof gbuf, &gargv);
  bool privileged = geteuid() == 0;
  if (privileged || single_self_map(uids, geteuid())) write_proc_file(pid, "uid_map", ubuf);
  else run_idmap_helper("newuidmap", pid, uargv);
  if (privileged || single_self_map(gids, getegid())) {
    /* An unprivileged process may map its own gid only after giving up setgroups. */
    if (!privileged) write_proc_file(pid, "setgroups", "deny");
    write_proc_file(pid, "gid_map", gbuf);
  } else {
    run_idmap_helper("newgidmap", pid, gargv);
  }
}

/* ---------- run ---------- */

#ifndef OPEN_TREE_CLONE
#define OPEN_TREE_CLONE 1
#endif
#ifndef MOUNT_ATTR_IDMAP
#define MOUNT_ATTR_IDMAP 0x00100000
#endif
#ifndef AT_RECURSIVE
#define AT_RECURSIVE 0x8000
#endif

/* A detached copy of path whose files are seen through the sandbox's user namespace (host uid 0 as its
 * root, and so on). -1 when this kernel or file system cannot idmap it: the path is then bound as it is. */
static int idmapped_clone(const idmap_request *r, int userns_fd) {
  int at = r->recursive ? AT_RECURSIVE : 0;
  int fd = (int)syscall(SYS_open_tree, AT_FDCWD, r->path, OPEN_TREE_CLONE | O_CLOEXEC | at);
  if (fd < 0) return -1;
  struct { uint64_t attr_set, attr_clr, propagation, userns_fd; } attr = { MOUNT_ATTR_IDMAP, 0, 0, (uint64_t)userns_fd };
  if (syscall(SYS_mount_setattr, fd, "", AT_EMPTY_PATH | at, &attr, sizeof attr) < 0) {
    int err = errno;
    char epath[8192];
    report_event("warning", ",\"stage\":\"idmap\",\"errno\":%d,\"code\":\"%s\",\"path\":\"%s\",\"message\":\"not idmapped, bound as it is\"", err,
                 strerrorname_np(err) ?: "", json_escape(r->path, epath, sizeof epath));
    close(fd);
    return -1;
  }
  return fd;
}

/* The go byte, with the idmapped mounts the spec asks for (SCM_RIGHTS) and, per request, whether one came. */
static void release_child(int sock, pid_t child, const jval *cfg) {
  idmap_request requests[253];
  size_t n = rootfs_idmap_requests(cfg, requests, 253);
  int fds[253], nfds = 0;
  char data[1 + 253] = "g";
  if (n) {
    char ns[64];
    snprintf(ns, sizeof ns, "/proc/%d/ns/user", child);
    int userns = open(ns, O_RDONLY | O_CLOEXEC);
    if (userns < 0) die("idmap", ns, errno, "opening the sandbox's user namespace");
    for (size_t i = 0; i < n; i++) {
      int fd = idmapped_clone(&requests[i], userns);
      data[1 + i] = fd >= 0 ? 1 : 0;
      if (fd >= 0) fds[nfds++] = fd;
    }
    close(userns);
  }
  char control[CMSG_SPACE(sizeof fds)];
  memset(control, 0, sizeof control);
  struct iovec iov = { data, 1 + n };
  struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1 };
  if (nfds) {
    msg.msg_control = control;
    msg.msg_controllen = CMSG_SPACE((size_t)nfds * sizeof(int));
    struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN((size_t)nfds * sizeof(int));
    memcpy(CMSG_DATA(c), fds, (size_t)nfds * sizeof(int));
  }
  if (sendmsg(sock, &msg, MSG_NOSIGNAL) != (ssize_t)(1 + n)) die("run", NULL, errno, "releasing the sandbox");
  for (int i = 0; i < nfds; i++) close(fds[i]);
}

/* The child's side of release_child: -1 for each request that came without an idmapped mount. */
static bool await_release(int sock, const jval *cfg, int *idmapped, size_t *nidmapped) {
  idmap_request requests[253];
  size_t n = rootfs_idmap_requests(cfg, requests, 253);
  char data[1 + 253];
  int fds[253];
  char control[CMSG_SPACE(sizeof fds)];
  struct iovec iov = { data, 1 + n };
  struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = control, .msg_controllen = sizeof control };
  ssize_t got;
  do got = recvmsg(sock, &msg, MSG_CMSG_CLOEXEC); while (got < 0 && errno == EINTR);
  if (got != (ssize_t)(1 + n) || data[0] != 'g') return false;
  size_t nfds = 0;
  struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
  if (c && c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS) {
    nfds = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
    memcpy(fds, CMSG_DATA(c), nfds * sizeof(int));
  }
  size_t next = 0;
  for (size_t i = 0; i < n; i++) idmapped[i] = data[1 + i] && next < nfds ? fds[next++] : -1;
  *nidmapped = n;
  return true;
}

/* Namespaces given by path are joined by the monitor before clone(), so the
 * sandbox is born in them (a shared network, a file's worker sandbox). The
 * user namespace goes first: it grants the rights to join the others, which
 * is what makes this work rootless (we own that user namespace). */
static void join_spec_namespaces(const jval *nss) {
  static const char *const order[] = { "user", "network", "ipc", "uts", "pid", "cgroup" };
  enum { N = sizeof order / sizeof order[0] };
  /* All opened first, with our own rights: once in another user namespace we could no longer
   * open the namespaces of a process that is not dumpable (a sandbox's pid 1). */
  int fds[N];
  const char *paths[N] = { 0 };
  for (size_t o = 0; o < N; o++) {
    fds[o] = -1;
    for (const jval *n = nss ? nss->child : NULL; n; n = n->next) {
      const char *t = json_str(n, "type"), *path = json_str(n, "path");
      if (!path || strcmp(t, order[o])) continue;
      paths[o] = path;
      fds[o] = open(path, O_RDONLY | O_CLOEXEC);
      if (fds[o] < 0) die("namespaces", path, errno, "opening the %s namespace to join", t);
    }
  }
  bool root = geteuid() == 0;
  for (size_t o = 0; o < N; o++) {
    if (fds[o] < 0) continue;
    if (setns(fds[o], 0) < 0) die("namespaces", paths[o], errno, "joining the %s namespace", order[o]);
    close(fds[o]);
  }
  /* Gaining a user namespace's capabilities made us not dumpable; rootless, the sandbox's pid 1 inherits
   * that and the caller could no longer reach its /proc/<pid>/ns (see child_main). */
  if (!root && fds[0] >= 0) prctl(PR_SET_DUMPABLE, 1, 0, 0, 0);
  for (const jval *n = nss ? nss->child : NULL; n; n = n->next)
    if (json_str(n, "path") && !strcmp(json_str(n, "type"), "mount"))
      die("spec", "mount", ENOTSUP, "joining an existing mount namespace is not supported");
}

typedef struct {
  jval *cfg;
  const char *bundle;
  int sync_fd;
  int ns_flags;
  bool in_userns;
  int preserve_fd;
  const char *cgroup_v1_path; /* the child joins it itself (see cgroup_join_v1_self) */
  const seccomp_program *seccomp;
  bool started_by_root;       /* the caller was host root (our own uid reads 0 either way once mapped) */
} child_args;

/* In a user namespace of its own the sandbox's first process becomes that namespace's root: until
 * now it kept the caller's host uid (root's, when started as root), which no sandbox process may have. */
static void become_namespace_root(void) {
  if (setresgid(0, 0, 0) < 0) die("userns", NULL, errno, "setresgid(0) in the sandbox's user namespace");
  /* setgroups is denied in a user namespace with a single mapping (rootless without subordinate ids). */
  if (setgroups(0, NULL) < 0 && errno != EPERM) die("userns", NULL, errno, "setgroups in the sandbox's user namespace");
  if (setresuid(0, 0, 0) < 0) die("userns", NULL, errno, "setresuid(0) in the sandbox's user namespace");
}

static void await_go_signal(void) {
  sigset_t all;
  sigfillset(&all);
  sigprocmask(SIG_BLOCK, &all, NULL);
  report_event("held", NULL);
  for (;;) {
    int sig = sigwaitinfo(&all, NULL);
    if (sig < 0 && errno == EINTR) continue;
    if (sig == SIGCONT) return;
    if (sig < 0) die("init", NULL, errno, "sigwaitinfo");
    _exit(128 + sig);
  }
}

static void child_main(child_args *a) {
  prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
  static int idmapped[253];
  size_t nidmapped = 0;
  /* EOF instead of the go byte: the monitor died before we were set up. */
  if (!await_release(a->sync_fd, a->cfg, idmapped, &nidmapped)) _exit(EXIT_RUNTIME_ERROR);
  close(a->sync_fd);
  /* Started by root: not dumpable from here on, as processes of the sandbox will share our uid and must not
   * ptrace us or open /proc/1/fd. (Rootless, they are the caller's own uid anyway, and the caller must
   * still reach /proc/<pid 1>/ns to exec into the sandbox, which a non-dumpable pid 1 would refuse it.) */
  if (a->started_by_root) prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
  /* pid 1 never execs, so O_CLOEXEC does not protect it: drop every fd it does not need (the
   * monitor's control socket, a cgroup directory of the host, anything the caller leaked), or
   * the sandbox could reach host files through /proc/1/fd. */
  int keep[72 + 253] = { report_fd(), a->preserve_fd };
  int nkeep = 2 + forward_fds(keep + 2, 70);
  for (size_t i = 0; i < nidmapped; i++) keep[nkeep++] = idmapped[i];
  keep_only_fds(keep, nkeep);
  const jval *linux_ = json_get(a->cfg, "linux");
  /* cgroup v1: we move ourselves, first thing, before anything of the sandbox runs (v2: born there). */
  if (a->cgroup_v1_path) cgroup_join_v1_self(a->cgroup_v1_path);
  /* Entered only now, inside our cgroup, so that the sandbox sees its own cgroup as "/". */
  if ((a->ns_flags & CLONE_NEWCGROUP) && unshare(CLONE_NEWCGROUP) < 0) die("namespaces", "cgroup", errno, "unshare(CLONE_NEWCGROUP)");
  const char *hostname = json_str(a->cfg, "hostname");
  if (hostname && sethostname(hostname, strlen(hostname)) < 0) die("hostname", hostname, errno, "sethostname");
  if (a->ns_flags & CLONE_NEWNET) loopback_up();
  /* What only the caller's identity reaches (bundle, image layers, bind sources) is opened first. */
  rootfs_prepare(a->cfg, a->bundle, idmapped, nidmapped);
  if (a->in_userns) become_namespace_root();
  /* Rootless, pid 1 must stay dumpable (see above); entering a user namespace may have made it not. */
  if (!a->started_by_root) prctl(PR_SET_DUMPABLE, 1, 0, 0, 0);
  join_new_session_keyring();
  rootfs_setup(a->cfg, a->in_userns);
  rootfs_finish(a->cfg);
  (void)linux_;
  if (rootfs_scratch_fd() >= 0) report_event("rootfs", ",\"scratchFd\":%d", rootfs_scratch_fd());
  /* Held: the root is ready and nothing runs in it yet (files are copied in now, by `tree --write`);
   * SIGCONT from the monitor lets the main process start, any other signal ends the sandbox. */
  const char *hold = json_str(json_get(a->cfg, "annotations"), "org.vitest-container.hold");
  if (hold && !strcmp(hold, "true")) await_go_signal();
  proc_spec p;
  proc_spec_load(&p, json_get(a->cfg, "process"));
  p.preserve_fd = a->preserve_fd;
  p.seccomp = a->seccomp;
  /* The default profile allows everything the main process does between fork and exec: pid 1 installs
   * it once, before the fork, and the main process inherits it (each install costs the kernel a
   * conversion and a JIT compile), with pid 1's session keyring. A profile of the user's is installed
   * in the main process as late as possible instead, as runc does, in case it refuses that setup. */
  const char *early = json_str(json_get(a->cfg, "annotations"), "org.vitest-container.seccomp.inherit");
  if (p.seccomp && early && !strcmp(early, "true")) {
    seccomp_install(p.seccomp);
    p.inherits_confinement = true;
  }
  init_main(&p);
}

static int cmd_run(const char *bundle, int control_fd, int preserve_fd) {
  /* Read before joining any user namespace: in one, even a rootless caller's uid reads 0. */
  bool started_by_root = geteuid() == 0;
  char path[4096];
  snprintf(path, sizeof path, "%s/config.json", bundle);
  char *text = read_file(path, 1 << 20);
  if (!text) die("spec", path, errno, "cannot read the bundle's config.json");
  jval *cfg = parse_or_die(text, path);
  const jval *linux_ = json_get(cfg, "linux");

  int flags = 0;
  const jval *nss = json_get(linux_, "namespaces");
  for (const jval *n = nss ? nss->child : NULL; n; n = n->next) {
    const char *t = json_str(n, "type");
    int flag = 0;
    for (size_t i = 0; t && i < sizeof ns_types / sizeof ns_types[0]; i++)
      if (!strcmp(t, ns_types[i].type)) flag = ns_types[i].flag;
    if (!flag) die("spec", t, EINVAL, "unknown namespace type");
    if (!json_str(n, "path")) flags |= flag;
  }
  /* Compiled here, once: pid 1 inherits it, and exec's processes load it from the bundle. */
  static seccomp_program seccomp;
  const jval *profile = json_get(linux_, "seccomp");
  if (profile) {
    seccomp_compile(profile, &seccomp);
    char saved[4096];
    snprintf(saved, sizeof saved, "%s/seccomp.bpf", bundle);
    seccomp_save(&seccomp, saved);
  }
  /* Host-side listeners, made here in the host's network namespace (before joining any other); pid 1 inherits them. */
  forward_listen(cfg);
  join_spec_namespaces(nss);
  const char *cgroup_path = json_str(linux_, "cgroupsPath");
  int cgroup_fd = cgroup_path ? cgroup_open_v2(cgroup_path) : -1;

  int sv[2];
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0) die("run", NULL, errno, "socketpair");
  int pidfd = -1;
  struct clone_args ca;
  memset(&ca, 0, sizeof ca);
  /* The cgroup namespace is entered by the child later (see child_main). */
  ca.flags = (uint64_t)(flags & ~CLONE_NEWCGROUP) | CLONE_PIDFD | (cgroup_fd >= 0 ? CLONE_INTO_CGROUP : 0);
  ca.pidfd = (uint64_t)(uintptr_t)&pidfd;
  ca.exit_signal = SIGCHLD;
  ca.cgroup = cgroup_fd >= 0 ? (uint64_t)cgroup_fd : 0;
  long pid = syscall(SYS_clone3, &ca, sizeof ca);
  if (pid < 0) {
    int err = errno;
    if (err == EPERM || err == EINVAL || err == ENOSPC || err == EUSERS)
      die("namespaces", (flags & CLONE_NEWUSER) ? "user" : NULL, err,
          "the kernel refused to create the sandbox's namespaces");
    die("clone", NULL, err, "clone3");
  }
  if (pid == 0) {
    close(sv[0]);
    bool in_userns = false;
    for (const jval *n = nss ? nss->child : NULL; n; n = n->next) in_userns |= !strcmp(json_str(n, "type"), "user");
    child_args a = { cfg, bundle, sv[1], flags, in_userns, preserve_fd, cgroup_fd < 0 ? cgroup_path : NULL, profile ? &seccomp : NULL, started_by_root };
    child_main(&a);
  }
  close(sv[1]);
  if (cgroup_fd >= 0) close(cgroup_fd);
  forward_close_listeners();
  /* The preserved fd is the sandbox's to keep, not the monitor's. */
  if (preserve_fd >= 0) close(preserve_fd);

  /* From here on a failure must take the child with it. */
  if (flags & CLONE_NEWUSER) write_id_maps((pid_t)pid, linux_);
  report_event("created", ",\"pid\":%ld", pid);
  release_child(sv[0], (pid_t)pid, cfg);
  close(sv[0]);

  struct pollfd pfd[2] = { { pidfd, POLLIN, 0 }, { control_fd, POLLIN, 0 } };
  int nfds = control_fd >= 0 ? 2 : 1;
  for (;;) {
    if (poll(pfd, (nfds_t)nfds, -1) < 0) {
      if (errno == EINTR) continue;
      die("run", NULL, errno, "poll");
    }
    if (pfd[0].revents) break;
    if (nfds == 2 && pfd[1].revents) {
      unsigned char sigs[64];
      ssize_t n = read(control_fd, sigs, sizeof sigs);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) {
        /* Our owner is gone: the sandbox must not outlive it. */
        syscall(SYS_pidfd_send_signal, pidfd, SIGKILL, NULL, 0);
        nfds = 1;
        continue;
      }
      for (ssize_t i = 0; i < n; i++) syscall(SYS_pidfd_send_signal, pidfd, (int)sigs[i], NULL, 0);
    }
  }
  siginfo_t si;
  memset(&si, 0, sizeof si);
  while (waitid(P_PIDFD, (id_t)pidfd, &si, WEXITED) < 0 && errno == EINTR) {}
  if (si.si_code == CLD_EXITED) report_event("stopped", ",\"code\":%d", si.si_status);
  else report_event("stopped", ",\"code\":%d,\"signal\":%d", 128 + si.si_status, si.si_status);
  return 0;
}

/* ---------- exec and file ---------- */

/* Whether we already are in the sandbox's namespace of kind ns; dies when the sandbox is gone. */
static bool same_ns(pid_t pid, const char *ns) {
  char path[64];
  snprintf(path, sizeof path, "/proc/%d/ns/%s", pid, ns);
  if (access(path, F_OK) < 0) die("exec", path, errno, "the sandbox is not running");
  return same_namespace(pid, 0, ns);
}

static unsigned long expected_pidns; /* --pidns: the sandbox's pid namespace, to tell it from a reused pid */
static bool joined_user_namespace;   /* join_namespaces entered the sandbox's user namespace */

/* The pidfd of the sandbox's pid 1 (the caller closes it), checked to be the sandbox's and not a reused pid. */
static int open_sandbox(pid_t pid) {
  /* We keep the caller's (host) uid inside the sandbox's namespaces until the command's own identity
   * is set: not dumpable, so no process of the sandbox can ptrace us or reach our fds meanwhile. */
  prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
  int pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
  if (pidfd < 0) die("exec", NULL, errno, "the sandbox's pid 1 (%d) is gone", pid);
  if (expected_pidns) {
    /* The pidfd pins the process; /proc/<pid> now names the same one (or it is gone). */
    char ns[64];
    struct stat st;
    snprintf(ns, sizeof ns, "/proc/%d/ns/pid", pid);
    if (stat(ns, &st) < 0 || st.st_ino != expected_pidns || syscall(SYS_pidfd_send_signal, pidfd, 0, NULL, 0) < 0)
      die("exec", NULL, ESRCH, "the sandbox's pid 1 (%d) is gone (its pid now belongs to another process)", pid);
  }
  return pidfd;
}

/* Joins those of the sandbox's namespaces (of the kinds in `only`) that we are not in already. */
static void enter_namespaces(int pidfd, pid_t pid, int only) {
  int flags = 0;
  static const struct { const char *name; int flag; } joinable[] = {
    {"user", CLONE_NEWUSER}, {"mnt", CLONE_NEWNS}, {"pid", CLONE_NEWPID}, {"net", CLONE_NEWNET},
    {"ipc", CLONE_NEWIPC}, {"uts", CLONE_NEWUTS}, {"cgroup", CLONE_NEWCGROUP},
  };
  for (size_t i = 0; i < sizeof joinable / sizeof joinable[0]; i++)
    if ((joinable[i].flag & only) && !same_ns(pid, joinable[i].name)) flags |= joinable[i].flag;
  if (flags && setns(pidfd, flags) < 0) die("exec", NULL, errno, "joining the sandbox's namespaces");
  joined_user_namespace = flags & CLONE_NEWUSER;
}

/* Returns the pidfd of the sandbox's pid 1 (the caller closes it). */
static int join_namespaces(pid_t pid, int only) {
  int pidfd = open_sandbox(pid);
  enter_namespaces(pidfd, pid, only);
  return pidfd;
}

/* Streams one file between stdio and the sandbox. It runs inside the
 * sandbox's mount namespace, so the path (and every symlink on it) resolves
 * against the sandbox's root, never the host's. */
static int cmd_file(pid_t pid, const char *read_path, const char *write_path, mode_t mode) {
  close(join_namespaces(pid, CLONE_NEWUSER | CLONE_NEWNS));
  /* Files are read and written as the sandbox's root would: host root's rights over the image
   * ('host': /etc/shadow) are not the sandbox's, and a written file belongs to the sandbox's root. */
  if (joined_user_namespace) become_namespace_root();
  int in = 0, out = 1;
  const char *path = read_path ? read_path : write_path;
  /* Resolved strictly inside the sandbox's root: no "..", absolute symlink or /proc magic link
   * (a /proc/<pid>/fd/N planted by the sandbox) may lead out of it. */
  int root = open("/", O_PATH | O_DIRECTORY | O_CLOEXEC);
  struct open_how how = { .flags = (unsigned long long)(read_path ? O_RDONLY | O_CLOEXEC : O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC),
                          .mode = read_path ? 0 : mode, .resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS };
  int fd = root < 0 ? -1 : (int)syscall(SYS_openat2, root, path, &how, sizeof how);
  if (read_path) in = fd;
  else out = fd;
  if (in < 0 || out < 0) die("file", path, errno, "cannot open the file in the sandbox");
  char buf[65536];
  for (;;) {
    ssize_t n = read(in, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) die("file", path, errno, "read");
    if (n == 0) break;
    for (ssize_t o = 0; o < n;) {
      ssize_t w = write(out, buf + o, (size_t)(n - o));
      if (w < 0 && errno == EINTR) continue;
      if (w < 0) die("file", path, errno, "write");
      o += w;
    }
  }
  if (write_path && close(out) < 0) die("file", path, errno, "close");
  report_event("exit", ",\"code\":0");
  return 0;
}

/* A tree of the sandbox as a record stream (see tree.c): its writable layer (--upper, the scratch fd
 * pid 1 reported) or a path (--read) to stdout, or stdin's records into a directory (--write; without
 * --pid, a directory of the host, with the caller's own rights: copyFrom's destination). It runs
 * as the sandbox's root in the sandbox's user namespace, so owners read and written are the sandbox's
 * ids; paths resolve inside the sandbox's root as readFile's do. --hold: once the tree is open, wait for
 * a byte on the control channel before reading it (the caller stops the sandbox meanwhile: the open
 * layer outlives it). */
static int cmd_tree(pid_t pid, const char *read_path, const char *write_path, int upper_fd, const char *stage_path, bool hold, bool one_fs, int control_fd) {
  int pidfd = pid ? open_sandbox(pid) : -1;
  int root, stage = -1;
  if (!pid) {
    /* No sandbox: a host directory the caller chose (copyFrom's), written with the caller's own rights. */
    root = open(write_path, O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (root < 0) die("tree", write_path, errno, "cannot open the destination directory");
  } else if (upper_fd >= 0) {
    /* Through pid 1's descriptor, before joining anything: started by root pid 1 is not dumpable, and
     * only the host's root may open its fds. We stay in the host's mount namespace, and use nothing
     * but this directory, always relative to it and never through a symlink. */
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/fd/%d", pid, upper_fd);
    int scratch = open(path, O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (scratch < 0) die("tree", path, errno, "the sandbox's writable layer is not reachable");
    root = openat(scratch, "upper", O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (root < 0) die("tree", "upper", errno, "the sandbox's writable layer is not reachable");
    close(scratch);
    /* Still alive after the open: the /proc entry we opened was pid 1's, not a reused pid's. */
    if (syscall(SYS_pidfd_send_signal, pidfd, 0, NULL, 0) < 0) die("tree", NULL, ESRCH, "the sandbox ended");
    /* The caller's empty directory for the files' data (its owner is the sandbox's root, who writes there). */
    if (stage_path && (stage = open(stage_path, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)) < 0)
      die("tree", stage_path, errno, "cannot open the stage directory");
    enter_namespaces(pidfd, pid, CLONE_NEWUSER);
    if (joined_user_namespace) become_namespace_root();
  } else {
    enter_namespaces(pidfd, pid, CLONE_NEWUSER | CLONE_NEWNS);
    /* The sandbox's root from here on: what is made belongs to it, and host root's rights are not its. */
    if (joined_user_namespace) become_namespace_root();
    int top = open("/", O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (top < 0) die("tree", "/", errno, "opening the sandbox's root");
    if (write_path) {
      root = open_in_root(top, write_path, true);
      if (root < 0) die("tree", write_path, errno, "cannot open or create the destination in the sandbox");
    } else {
      /* Resolved strictly inside the sandbox's root (no "..", absolute symlink or magic link out of it). */
      struct open_how how = { .flags = O_PATH | O_CLOEXEC, .resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS };
      int at = (int)syscall(SYS_openat2, top, read_path, &how, sizeof how);
      struct stat st, again;
      if (at < 0 || fstat(at, &st) < 0) die("tree", read_path, errno, "cannot open the path in the sandbox");
      if (S_ISDIR(st.st_mode)) {
        root = openat(at, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
      } else if (S_ISREG(st.st_mode)) {
        how.flags = O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC;
        root = (int)syscall(SYS_openat2, top, read_path, &how, sizeof how);
        if (root >= 0 && (fstat(root, &again) < 0 || again.st_ino != st.st_ino || again.st_dev != st.st_dev)) errno = ESTALE, root = -1;
      } else {
        root = dup(at); /* a FIFO, socket or device: its metadata only, never opened */
      }
      if (root < 0) die("tree", read_path, errno, "cannot open the path in the sandbox");
      close(at);
    }
    close(top);
  }
  if (pidfd >= 0) close(pidfd);
  if (write_path) {
    struct stat st;
    if (fstat(root, &st) < 0 || !S_ISDIR(st.st_mode)) die("tree", write_path, ENOTDIR, "the destination is not a directory");
  }
  if (hold) {
    report_event("ready", NULL);
    unsigned char go;
    ssize_t n;
    do n = read(control_fd, &go, 1); while (n < 0 && errno == EINTR);
    if (n != 1) _exit(EXIT_RUNTIME_ERROR); /* the caller is gone */
  }
  if (write_path) tree_apply(root, 0);
  else tree_emit(root, one_fs, 1, stage);
  report_event("exit", ",\"code\":0");
  return 0;
}

static int cmd_exec(pid_t pid, const char *cgroup_path, const char *seccomp_path, const char *process_json, int control_fd) {
  jval *process = parse_or_die(process_json, "process");
  proc_spec p;
  proc_spec_load(&p, process);
  static seccomp_program seccomp;
  if (seccomp_path) {
    seccomp_load_file(seccomp_path, &seccomp);
    p.seccomp = &seccomp;
  }
  /* The command joins the sandbox's cgroup without a migration of a thread group (see cgroup.c):
   * on cgroup2 it is born there, on v1 this single-threaded helper moves itself and forks it. */
  if (cgroup_path) {
    p.cgroup_fd = cgroup_open_v2(cgroup_path);
    if (p.cgroup_fd < 0) cgroup_join_v1_self(cgroup_path);
  }
  /* The command enters the sandbox's cgroup namespace after its birth (see spawn_checked), and
   * only when the sandbox has one of its own: re-entering the host's would need rights it lacks. */
  bool own_cgroupns = p.cgroup_fd >= 0 && !same_ns(pid, "cgroup");
  if (own_cgroupns) {
    /* Opened now, with the caller's rights: once we are in the sandbox's user namespace, a pid 1 that is
     * not dumpable (started by root) no longer lets us reach its namespaces, by /proc or by pidfd. */
    char ns[64];
    snprintf(ns, sizeof ns, "/proc/%d/ns/cgroup", pid);
    p.cgroupns_fd = open(ns, O_RDONLY | O_CLOEXEC);
    if (p.cgroupns_fd < 0) die("exec", ns, errno, "opening the sandbox's cgroup namespace");
  }
  close(join_namespaces(pid, own_cgroupns ? ~CLONE_NEWCGROUP : ~0));
  int code = run_and_wait(&p, report_fd() >= 0, control_fd);
  report_event("exit", ",\"code\":%d", code);
  return code;
}

int main(int argc, char **argv) {
  if (argc < 2) usage();
  const char *cmd = argv[1], *bundle = NULL, *cgroup = NULL, *read_path = NULL, *write_path = NULL;
  mode_t mode = 0644;
  int control_fd = -1, preserve_fd = -1;
  const char *connect_path = NULL, *token = NULL, *listen_path = NULL, *seccomp_path = NULL, *stage_path = NULL;
  bool stdin_from_caller = false, hold = false, one_fs = false;
  int upper_fd = -1;
  pid_t pid = 0, owner = 0;
  int i = 2;
  for (; i < argc && !strncmp(argv[i], "--", 2); i++) {
    if (!strcmp(argv[i], "--")) { i++; break; }
    if (!strcmp(argv[i], "--stdin")) { stdin_from_caller = true; continue; }
    if (!strcmp(argv[i], "--hold")) { hold = true; continue; }
    if (!strcmp(argv[i], "--one-file-system")) { one_fs = true; continue; }
    if (i + 1 >= argc) usage();
    if (!strcmp(argv[i], "--bundle")) bundle = argv[++i];
    else if (!strcmp(argv[i], "--control-fd")) control_fd = atoi(argv[++i]);
    else if (!strcmp(argv[i], "--preserve-fd")) preserve_fd = atoi(argv[++i]);
    else if (!strcmp(argv[i], "--connect")) connect_path = argv[++i];
    else if (!strcmp(argv[i], "--token")) token = argv[++i];
    else if (!strcmp(argv[i], "--pidns")) expected_pidns = strtoul(argv[++i], NULL, 10);
    else if (!strcmp(argv[i], "--status-fd")) report_init(atoi(argv[++i]));
    else if (!strcmp(argv[i], "--pid")) pid = atoi(argv[++i]);
    else if (!strcmp(argv[i], "--owner")) owner = atoi(argv[++i]);
    else if (!strcmp(argv[i], "--listen")) listen_path = argv[++i];
    else if (!strcmp(argv[i], "--cgroup")) cgroup = argv[++i];
    else if (!strcmp(argv[i], "--seccomp")) seccomp_path = argv[++i];
    else if (!strcmp(argv[i], "--read")) read_path = argv[++i];
    else if (!strcmp(argv[i], "--write")) write_path = argv[++i];
    else if (!strcmp(argv[i], "--mode")) mode = (mode_t)strtol(argv[++i], NULL, 8);
    else if (!strcmp(argv[i], "--upper")) upper_fd = atoi(argv[++i]);
    else if (!strcmp(argv[i], "--stage")) stage_path = argv[++i];
    else usage();
  }
  /* Nothing inherited by accident reaches the sandbox: only the fds named on the command line stay. */
  int named[3] = { control_fd, report_fd(), preserve_fd };
  keep_only_fds(named, 3);
  if (!strcmp(cmd, "spawner")) {
    if (listen_path && owner <= 0) usage();
    return cmd_spawner(listen_path, owner);
  }
  if (connect_path) {
    if (!token) usage();
    control_fd = connect_caller(connect_path, token, stdin_from_caller);
    report_init(control_fd);
  }
  if (!strcmp(cmd, "run")) {
    if (!bundle) usage();
    return cmd_run(bundle, control_fd, preserve_fd);
  }
  if (!strcmp(cmd, "exec")) {
    if (!pid || i >= argc) usage();
    return cmd_exec(pid, cgroup, seccomp_path, argv[i], control_fd);
  }
  if (!strcmp(cmd, "file")) {
    if (!pid || !read_path == !write_path) usage();
    return cmd_file(pid, read_path, write_path, mode);
  }
  if (!strcmp(cmd, "tree")) {
    if ((!pid && !write_path) || (upper_fd >= 0) + !!read_path + !!write_path != 1 || (hold && control_fd < 0) || (stage_path && upper_fd < 0)) usage();
    return cmd_tree(pid, read_path, write_path, upper_fd, stage_path, hold, one_fs, control_fd);
  }
  if (!strcmp(cmd, "features")) {
    printf("{\"ociVersionMin\":\"1.0.0\",\"ociVersionMax\":\"1.2.0\",\"annotations\":[\"org.vitest-container.rootfs.lowerdirs\","
           "\"org.vitest-container.rootfs.options\",\"org.vitest-container.rootfs.upper-size\",\"org.vitest-container.hold\"]}\n");
    return 0;
  }
  usage();
}
