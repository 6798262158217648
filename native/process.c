/* The container's processes: identity, capabilities, exec, and pid 1. */
#include "runtime.h"
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <linux/capability.h>
#include <linux/keyctl.h>
#include <linux/sched.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef CLOSE_RANGE_CLOEXEC
#define CLOSE_RANGE_CLOEXEC (1U << 2)
#endif

static const char *const cap_names[] = {
  "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_DAC_READ_SEARCH", "CAP_FOWNER", "CAP_FSETID", "CAP_KILL",
  "CAP_SETGID", "CAP_SETUID", "CAP_SETPCAP", "CAP_LINUX_IMMUTABLE", "CAP_NET_BIND_SERVICE",
  "CAP_NET_BROADCAST", "CAP_NET_ADMIN", "CAP_NET_RAW", "CAP_IPC_LOCK", "CAP_IPC_OWNER", "CAP_SYS_MODULE",
  "CAP_SYS_RAWIO", "CAP_SYS_CHROOT", "CAP_SYS_PTRACE", "CAP_SYS_PACCT", "CAP_SYS_ADMIN", "CAP_SYS_BOOT",
  "CAP_SYS_NICE", "CAP_SYS_RESOURCE", "CAP_SYS_TIME", "CAP_SYS_TTY_CONFIG", "CAP_MKNOD", "CAP_LEASE",
  "CAP_AUDIT_WRITE", "CAP_AUDIT_CONTROL", "CAP_SETFCAP", "CAP_MAC_OVERRIDE", "CAP_MAC_ADMIN", "CAP_SYSLOG",
  "CAP_WAKE_ALARM", "CAP_BLOCK_SUSPEND", "CAP_AUDIT_READ", "CAP_PERFMON", "CAP_BPF", "CAP_CHECKPOINT_RESTORE",
};
#define NCAPS (int)(sizeof cap_names / sizeof cap_names[0])

static const struct { const char *name; int res; } rlimit_names[] = {
  {"RLIMIT_CPU", RLIMIT_CPU}, {"RLIMIT_FSIZE", RLIMIT_FSIZE}, {"RLIMIT_DATA", RLIMIT_DATA},
  {"RLIMIT_STACK", RLIMIT_STACK}, {"RLIMIT_CORE", RLIMIT_CORE}, {"RLIMIT_RSS", RLIMIT_RSS},
  {"RLIMIT_NPROC", RLIMIT_NPROC}, {"RLIMIT_NOFILE", RLIMIT_NOFILE}, {"RLIMIT_MEMLOCK", RLIMIT_MEMLOCK},
  {"RLIMIT_AS", RLIMIT_AS}, {"RLIMIT_LOCKS", RLIMIT_LOCKS}, {"RLIMIT_SIGPENDING", RLIMIT_SIGPENDING},
  {"RLIMIT_MSGQUEUE", RLIMIT_MSGQUEUE}, {"RLIMIT_NICE", RLIMIT_NICE}, {"RLIMIT_RTPRIO", RLIMIT_RTPRIO},
  {"RLIMIT_RTTIME", RLIMIT_RTTIME},
};

static int last_cap(void) {
  static int cached = -1;
  if (cached < 0) {
    char *s = read_file("/proc/sys/kernel/cap_last_cap", 32);
    cached = s ? atoi(s) : NCAPS - 1;
    free(s);
  }
  return cached;
}

/* Bitmask of the capabilities named in caps[key]. */
static unsigned long long cap_mask(const jval *caps, const char *key) {
  unsigned long long mask = 0;
  const jval *arr = json_get(caps, key);
  if (!arr) return 0;
  for (const jval *c = arr->child; c; c = c->next) {
    int found = -1;
    for (int i = 0; i < NCAPS; i++)
      if (c->type == J_STR && !strcmp(c->str, cap_names[i])) found = i;
    if (found < 0) die("capabilities", NULL, 0, "unknown capability %s", c->type == J_STR ? c->str : "?");
    if (found <= last_cap()) mask |= 1ULL << found;
  }
  return mask;
}

void proc_spec_load(proc_spec *p, const jval *process) {
  memset(p, 0, sizeof *p);
  if (!process) die("spec", NULL, 0, "spec has no process");
  p->args = json_str_array(json_get(process, "args"));
  if (!p->args[0]) die("spec", NULL, 0, "process.args is empty");
  p->env = json_str_array(json_get(process, "env"));
  p->cwd = json_str(process, "cwd");
  if (!p->cwd) p->cwd = "/";
  const jval *user = json_get(process, "user");
  p->uid = (uid_t)json_num(user, "uid", 0);
  p->gid = (gid_t)json_num(user, "gid", 0);
  const jval *groups = json_get(user, "additionalGids");
  p->ngroups = json_len(groups);
  p->groups = calloc(p->ngroups + 1, sizeof(gid_t));
  size_t i = 0;
  if (groups)
    for (const jval *g = groups->child; g; g = g->next) p->groups[i++] = (gid_t)g->num;
  p->no_new_privs = json_bool(process, "noNewPrivileges", false);
  p->caps = json_get(process, "capabilities");
  p->rlimits = json_get(process, "rlimits");
  p->preserve_fd = -1;
  p->cgroup_fd = -1;
  p->cgroupns_fd = -1;
  p->seccomp = NULL;
}

static void apply_rlimits(const jval *rlimits) {
  if (!rlimits) return;
  for (const jval *r = rlimits->child; r; r = r->next) {
    const char *type = json_str(r, "type");
    int res = -1;
    for (size_t i = 0; type && i < sizeof rlimit_names / sizeof rlimit_names[0]; i++)
      if (!strcmp(type, rlimit_names[i].name)) res = rlimit_names[i].res;
    if (res < 0) die("rlimits", NULL, 0, "unknown rlimit %s", type ? type : "?");
    struct rlimit rl = { (rlim_t)json_num(r, "soft", 0), (rlim_t)json_num(r, "hard", 0) };
    if (setrlimit(res, &rl) < 0) die("rlimits", NULL, errno, "setrlimit %s", type);
  }
}

static void apply_identity_and_caps(const proc_spec *p) {
  if (p->caps) {
    unsigned long long bounding = cap_mask(p->caps, "bounding");
    for (int c = 0; c <= last_cap(); c++)
      if (!(bounding & (1ULL << c)) && prctl(PR_CAPBSET_DROP, c, 0, 0, 0) < 0 && errno != EINVAL)
        die("capabilities", NULL, errno, "dropping %s from the bounding set", c < NCAPS ? cap_names[c] : "?");
  }
  /* Keep permitted capabilities across the uid change; they are set explicitly below. */
  if (prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0) < 0) die("user", NULL, errno, "PR_SET_KEEPCAPS");
  /* setgroups is denied in a user namespace with a single mapping: an empty list is then already true. */
  if (setgroups(p->ngroups, p->groups) < 0 && !(errno == EPERM && p->ngroups == 0))
    die("user", NULL, errno, "setgroups");
  if (setresgid(p->gid, p->gid, p->gid) < 0) die("user", NULL, errno, "setresgid(%u): gid not mapped in this sandbox?", p->gid);
  if (setresuid(p->uid, p->uid, p->uid) < 0) die("user", NULL, errno, "setresuid(%u): uid not mapped in this sandbox?", p->uid);
  if (prctl(PR_SET_KEEPCAPS, 0, 0, 0, 0) < 0) die("user", NULL, errno, "PR_SET_KEEPCAPS");
  if (p->caps) {
    unsigned long long eff = cap_mask(p->caps, "effective"), perm = cap_mask(p->caps, "permitted"),
                       inh = cap_mask(p->caps, "inheritable"), amb = cap_mask(p->caps, "ambient");
    struct __user_cap_header_struct hdr = { _LINUX_CAPABILITY_VERSION_3, 0 };
    struct __user_cap_data_struct data[2] = {
      { (unsigned)eff, (unsigned)perm, (unsigned)inh },
      { (unsigned)(eff >> 32), (unsigned)(perm >> 32), (unsigned)(inh >> 32) },
    };
    if (syscall(SYS_capset, &hdr, data) < 0) die("capabilities", NULL, errno, "capset");
    for (int c = 0; c <= last_cap(); c++)
      if ((amb & (1ULL << c)) && prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, c, 0, 0) < 0)
        die("capabilities", NULL, errno, "raising ambient %s", cap_names[c]);
  }
  if (p->no_new_privs && prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0) die("process", NULL, errno, "no_new_privs");
}

/* A session keyring of its own: the caller's (a login's, the test runner's) may hold keys, and a
 * process possesses every key its session keyring links to, whatever its uid. */
void join_new_session_keyring(void) {
  if (syscall(SYS_keyctl, KEYCTL_JOIN_SESSION_KEYRING, NULL) < 0 && errno != ENOSYS)
    die("keyring", NULL, errno, "joining a new session keyring");
}

/* What pid 1 keeps once the main process runs: no more than that process has (its bounding set, and of
 * its capabilities only CAP_KILL, to forward signals to a main process of another uid), no_new_privs,
 * the same seccomp filter, and not dumpable (set at its start), so the sandbox cannot ptrace it. */
static void limit_init_privileges(const proc_spec *p) {
  /* Only the main process uses the preserved fd; pid 1 keeping it would hold the channel open. */
  if (p->preserve_fd >= 0) close(p->preserve_fd);
  if (!p->caps) return; /* a spec without capabilities keeps everything: nothing to be "no more than" */
  unsigned long long bounding = cap_mask(p->caps, "bounding"), keep = cap_mask(p->caps, "permitted") & (1ULL << CAP_KILL);
  for (int c = 0; c <= last_cap(); c++)
    if (!(bounding & (1ULL << c)) && prctl(PR_CAPBSET_DROP, c, 0, 0, 0) < 0 && errno != EINVAL)
      die("capabilities", NULL, errno, "dropping %s from pid 1's bounding set", c < NCAPS ? cap_names[c] : "?");
  struct __user_cap_header_struct hdr = { _LINUX_CAPABILITY_VERSION_3, 0 };
  struct __user_cap_data_struct data[2] = { { (unsigned)keep, (unsigned)keep, 0 }, { (unsigned)(keep >> 32), (unsigned)(keep >> 32), 0 } };
  if (syscall(SYS_capset, &hdr, data) < 0) die("capabilities", NULL, errno, "pid 1's capset");
  if (p->no_new_privs && prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0) die("process", NULL, errno, "pid 1's no_new_privs");
  if (p->seccomp && !p->inherits_confinement) seccomp_install(p->seccomp);
}

static const char *env_path(char **env) {
  for (char **e = env; *e; e++)
    if (!strncmp(*e, "PATH=", 5)) return *e + 5;
  return "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
}

/* execvpe() searches the caller's PATH, not the container's: search it here. */
static int exec_in_path(char **args, char **env) {
  if (strchr(args[0], '/')) { execve(args[0], args, env); return errno; }
  const char *path = env_path(env);
  int saved = ENOENT;
  char buf[4096];
  while (*path) {
    const char *end = strchrnul(path, ':');
    int n = snprintf(buf, sizeof buf, "%.*s/%s", (int)(end - path), end == path ? "." : path, args[0]);
    if (n > 0 && (size_t)n < sizeof buf) {
      execve(buf, args, env);
      if (errno == EACCES) saved = EACCES;
      else if (errno != ENOENT && errno != ENOTDIR) saved = errno;
    }
    path = *end ? end + 1 : end;
  }
  return saved;
}

void proc_exec(const proc_spec *p, int errfd) {
  sigset_t none;
  sigemptyset(&none);
  sigprocmask(SIG_SETMASK, &none, NULL);
  for (int s = 1; s < NSIG; s++) signal(s, SIG_DFL);
  apply_rlimits(p->rlimits);
  apply_identity_and_caps(p);
  if (chdir(p->cwd) < 0) die("process", p->cwd, errno, "cannot enter the working directory");
  /* Nothing of ours reaches the user's process except stdio and the exec-error pipe (cloexec). */
  if (syscall(SYS_close_range, 3, ~0U, CLOSE_RANGE_CLOEXEC) < 0)
    for (int fd = 3; fd < 1024; fd++) fcntl(fd, F_SETFD, FD_CLOEXEC);
  if (p->preserve_fd >= 0) fcntl(p->preserve_fd, F_SETFD, 0);
  if (!p->inherits_confinement) {
    join_new_session_keyring();
    /* Last: from here on only the syscalls the profile allows (execve among them). */
    if (p->seccomp) seccomp_install(p->seccomp);
  }
  int err = exec_in_path(p->args, p->env);
  /* Like a shell: 127 when not found, 126 when found but not executable. */
  int code = err == ENOENT || err == ENOTDIR ? 127 : 126;
  if (errfd >= 0) { ssize_t w = write(errfd, &err, sizeof err); (void)w; }
  fprintf(stderr, "%s: %s\n", p->args[0], code == 127 ? "not found" : strerror(err));
  _exit(code);
}

/* Forks the process; reports exec failure through a cloexec pipe so that
 * "started" is only said once exec has really happened. */
/* settle: run in the parent once the child has exec'd (or failed to), before that is reported. */
static pid_t spawn_checked(const proc_spec *p, bool report_started, void (*settle)(const proc_spec *)) {
  int errpipe[2];
  if (pipe2(errpipe, O_CLOEXEC) < 0) die("process", NULL, errno, "pipe");
  pid_t pid;
  if (p->cgroup_fd >= 0) {
    /* Born in the cgroup: no migration, so no wait for the kernel's cgroup lock (see cgroup.c). */
    struct clone_args ca = { .flags = CLONE_INTO_CGROUP, .exit_signal = SIGCHLD, .cgroup = (uint64_t)p->cgroup_fd };
    pid = (pid_t)syscall(SYS_clone3, &ca, sizeof ca);
  } else {
    pid = fork();
  }
  if (pid < 0) die("process", NULL, errno, "fork");
  if (pid == 0) {
    close(errpipe[0]);
    prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
    setsid();
    /* Only now: with nsdelegate, a process must see its source cgroup from its cgroup namespace to be born elsewhere. */
    if (p->cgroupns_fd >= 0 && setns(p->cgroupns_fd, CLONE_NEWCGROUP) < 0) {
      int err = errno;
      ssize_t w = write(errpipe[1], &err, sizeof err);
      (void)w;
      fprintf(stderr, "vtc-runtime: joining the sandbox's cgroup namespace: %s\n", strerror(err));
      _exit(126);
    }
    proc_exec(p, errpipe[1]);
  }
  close(errpipe[1]);
  int err = 0;
  ssize_t n;
  do n = read(errpipe[0], &err, sizeof err); while (n < 0 && errno == EINTR);
  close(errpipe[0]);
  if (settle) settle(p);
  if (n == sizeof err) {
    char ebuf[1100];
    report_event("exec-failed", ",\"errno\":%d,\"code\":\"%s\",\"path\":\"%s\"", err, strerrorname_np(err) ?: "",
                 json_escape(p->args[0], ebuf, sizeof ebuf));
  } else if (report_started) {
    report_event("started", NULL);
  }
  return pid;
}

static int status_to_code(int status) {
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return 255;
}

static void report_exit(int status) {
  if (WIFSIGNALED(status)) report_event("exit", ",\"code\":%d,\"signal\":%d", 128 + WTERMSIG(status), WTERMSIG(status));
  else report_event("exit", ",\"code\":%d", status_to_code(status));
}

static int sig_tag; /* epoll tag of the signalfd; forward.c's tags are the others */

/* Waits for main while forwarding every catchable signal to it, reaping every
 * other child (pid 1's duty towards orphans) and relaying forwarded ports. */
static int ctl_tag; /* epoll tag of the control fd (exec: signals from the caller) */

static int supervise(pid_t main, bool reap_all, int control_fd) {
  sigset_t all;
  sigfillset(&all);
  int sfd = signalfd(-1, &all, SFD_CLOEXEC | SFD_NONBLOCK);
  int epfd = epoll_create1(EPOLL_CLOEXEC);
  if (sfd < 0 || epfd < 0) die("init", NULL, errno, "signalfd/epoll");
  struct epoll_event sev = { .events = EPOLLIN, .data.ptr = &sig_tag };
  if (epoll_ctl(epfd, EPOLL_CTL_ADD, sfd, &sev) < 0) die("init", NULL, errno, "epoll_ctl");
  if (reap_all) forward_register(epfd);
  struct epoll_event cev = { .events = EPOLLIN, .data.ptr = &ctl_tag };
  if (control_fd >= 0 && epoll_ctl(epfd, EPOLL_CTL_ADD, control_fd, &cev) < 0) control_fd = -1;
  for (;;) {
    struct epoll_event evs[64];
    int n = epoll_wait(epfd, evs, 64, -1);
    if (n < 0) {
      if (errno == EINTR) continue;
      die("init", NULL, errno, "epoll_wait");
    }
    for (int i = 0; i < n; i++) {
      if (evs[i].data.ptr == &ctl_tag) {
        /* A byte N is signal N for the command; end-of-file means the caller is gone. */
        unsigned char sigs[64];
        ssize_t r = read(control_fd, sigs, sizeof sigs);
        if (r <= 0 && !(r < 0 && errno == EINTR)) {
          kill(main, SIGKILL);
          epoll_ctl(epfd, EPOLL_CTL_DEL, control_fd, NULL);
        }
        for (ssize_t k = 0; k < r; k++) kill(main, sigs[k]);
        continue;
      }
      if (evs[i].data.ptr != &sig_tag) { forward_event(epfd, evs[i].data.ptr, evs[i].events); continue; }
      struct signalfd_siginfo si;
      while (read(sfd, &si, sizeof si) == sizeof si) {
        if (si.ssi_signo != SIGCHLD) { kill(main, (int)si.ssi_signo); continue; }
        for (;;) {
          int status;
          pid_t w = waitpid(reap_all ? -1 : main, &status, WNOHANG);
          if (w <= 0) break;
          if (w == main) return status;
        }
      }
    }
  }
}

void init_main(const proc_spec *p) {
  sigset_t all;
  sigfillset(&all);
  sigprocmask(SIG_BLOCK, &all, NULL);
  /* Confined before the start is reported: whoever sees "started" finds pid 1 with no more than the main process. */
  pid_t main = spawn_checked(p, true, limit_init_privileges);
  int status = supervise(main, true, -1);
  report_exit(status);
  /* pid 1 cannot be killed by its own signal: pass the status on as a code. */
  _exit(status_to_code(status));
}

int run_and_wait(const proc_spec *p, bool report_started, int control_fd) {
  sigset_t all;
  sigfillset(&all);
  sigprocmask(SIG_BLOCK, &all, NULL);
  pid_t child = spawn_checked(p, report_started, NULL);
  int status = supervise(child, false, control_fd);
  return status_to_code(status);
}
