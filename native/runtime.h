/* vtc-runtime: executes an OCI runtime-spec subset. It decides nothing: every
 * policy (which mounts, which capabilities, which limits) comes from the spec
 * that the TypeScript side wrote. See ../src/runtime/spec.ts for the producer. */
#ifndef VTC_RUNTIME_H
#define VTC_RUNTIME_H
#define _GNU_SOURCE
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include "json.h"

/* Exit code used when the runtime itself fails (docker uses the same). */
#define EXIT_RUNTIME_ERROR 125

/* ---- report.c: the status channel to the TypeScript side ---- */
void report_init(int fd);
int report_fd(void);
/* Writes one JSON line: {"type":type, ...extra} where extra is a preformatted
 * JSON fragment starting with ',' or empty. */
void report_event(const char *type, const char *extra_fmt, ...) __attribute__((format(printf, 2, 3)));
/* Reports {"type":"error","stage":..,"path":..,"errno":..,"message":..} and exits 125. */
void die(const char *stage, const char *path, int err, const char *fmt, ...) __attribute__((noreturn, format(printf, 4, 5)));
/* JSON-escapes s into buf. */
const char *json_escape(const char *s, char *buf, size_t len);

/* ---- seccomp.c: linux.seccomp compiled to BPF ---- */
struct sock_filter;
typedef struct { struct sock_filter *insns; unsigned short len; } seccomp_program;
/* Compiles an OCI seccomp profile for this architecture; dies on anything it cannot express. */
void seccomp_compile(const jval *profile, seccomp_program *out);
void seccomp_install(const seccomp_program *prog);
/* The compiled program, kept in the bundle so that exec's processes get the same filter. */
void seccomp_save(const seccomp_program *prog, const char *path);
void seccomp_load_file(const char *path, seccomp_program *out);

/* ---- process.c: the container's processes ---- */
typedef struct {
  char **args;
  char **env;
  const char *cwd;
  uid_t uid;
  gid_t gid;
  gid_t *groups;
  size_t ngroups;
  bool no_new_privs;
  const jval *caps;    /* process.capabilities, may be NULL (keep everything) */
  const jval *rlimits; /* process.rlimits, may be NULL */
  int preserve_fd;     /* an extra fd the process keeps (e.g. Node's IPC channel), or -1 */
  int cgroup_fd;       /* a cgroup2 directory the process is born in (CLONE_INTO_CGROUP), or -1 */
  int cgroupns_fd;     /* with cgroup_fd: the cgroup namespace (an ns fd) the process then enters, or -1 */
  const seccomp_program *seccomp; /* installed last, just before exec; NULL: none */
  bool inherits_confinement;      /* forked from a pid 1 that already has the filter and a session keyring of its own */
} proc_spec;

void proc_spec_load(proc_spec *p, const jval *process);
/* In the forked child: applies rlimits, identity, capabilities and execs.
 * Never returns; on exec failure prints a shell-style message and exits 126/127. */
void proc_exec(const proc_spec *p, int errfd) __attribute__((noreturn));
void join_new_session_keyring(void);
/* Runs as the sandbox's pid 1: starts the main process, reaps every child,
 * forwards signals, exits with the main process's status. */
void init_main(const proc_spec *p) __attribute__((noreturn));
/* Forks p as a child of the calling process and waits for it, forwarding
 * signals (and those that arrive as bytes on control_fd, when >= 0). Returns a shell-style exit status (128+signal when killed). */
int run_and_wait(const proc_spec *p, bool report_started, int control_fd);

/* ---- rootfs.c: the sandbox's file tree ---- */
/* What the spec wants seen with the sandbox's own ids (an idmapped mount): bind mounts with the "idmap" or
 * "ridmap" option, and the image layers when the rootfs.idmap annotation says so. Only the monitor, with the
 * caller's rights over the host's mounts, can make those; it hands them to pid 1 in this order. */
typedef struct { const char *path; bool recursive; int layer; int mount; } idmap_request; /* layer or mount index, -1 */
size_t rootfs_idmap_requests(const jval *cfg, idmap_request *out, size_t max);
/* With the caller's identity: makes the mount tree private, mounts the scratch tmpfs, opens the layers and
 * bind sources. idmapped: one fd per rootfs_idmap_requests entry (-1: not idmapped, use the plain path). */
void rootfs_prepare(const jval *cfg, const char *bundle, const int *idmapped, size_t nidmapped);
/* As the sandbox's root: overlay, the spec's mounts, devices, pivot_root. */
void rootfs_setup(const jval *cfg, bool in_userns);
void rootfs_finish(const jval *cfg);   /* after pivot_root: masked and read-only paths */
/* After rootfs_setup: the scratch tmpfs (upper/ is the writable layer) that pid 1 keeps open, or -1. */
int rootfs_scratch_fd(void);
/* Opens path below rootfd (symlinks resolved as if rootfd were "/"), creating it when missing. */
int open_in_root(int rootfd, const char *path, bool want_dir);
void loopback_up(void);

/* Whether processes a and b (0: this one) share their namespace of kind ns ("mnt", "user", ...);
 * false when either is gone. */
bool same_namespace(pid_t a, pid_t b, const char *ns);

/* ---- tree.c: file trees as record streams (commit, copyFrom, copyTo) ---- */
/* Writes the tree at rootfd (a directory or a file) to out, ending with the end record; with a stage
 * directory (>= 0), each regular file's data is also written there, in a file of its own. */
void tree_emit(int rootfd, bool one_file_system, int out, int stage);
/* Reads records from in and makes their entries below destfd, never through a symlink. */
void tree_apply(int destfd, int in);

/* ---- spawner.c ---- */
int cmd_spawner(const char *listen_path, pid_t owner);

/* ---- cgroup.c ---- */
/* Opens the cgroup2 directory for CLONE_INTO_CGROUP, or -1 when the host is not pure cgroup2. */
int cgroup_open_v2(const char *path);
/* Moves the calling (single-threaded) process into <hierarchy>/<path> of every cgroup v1 hierarchy where it exists. */
void cgroup_join_v1_self(const char *path);

/* ---- forward.c: host loopback → sandbox ports ---- */
void forward_listen(const jval *cfg);     /* monitor, before clone */
void forward_close_listeners(void);       /* monitor, after clone */
int forward_fds(int *out, int max);       /* the listeners pid 1 must keep */
void forward_register(int epfd);          /* pid 1 */
void forward_event(int epfd, void *tag, uint32_t events);

/* ---- util ---- */
/* Closes every fd above 2 except those in keep (n of them; -1 entries ignored). */
void keep_only_fds(const int *keep, int n);
char *read_file(const char *path, size_t max);
char **json_str_array(const jval *arr);
#endif
