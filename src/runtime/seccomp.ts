// The default seccomp profile: which system calls a sandbox's processes may make. It has the
// semantics of Docker's default profile (an allowlist; what is not allowed fails with EPERM, clone3
// with ENOSYS so that C libraries fall back to clone), written here from the syscalls' own facts:
// what each call can reach beyond the sandbox's namespaces, and which capability the kernel itself
// asks for it. native/seccomp.c compiles it to BPF for x86_64 or aarch64 (names an architecture
// lacks are skipped) and installs it after no_new_privs, just before exec.
//
// Refused by default: the kernel keyring (keyctl, add_key, request_key: not namespaced), io_uring
// (a large attack surface that also bypasses this filter's view of the calls it performs),
// userfaultfd and perf_event_open (exploitation aids), bpf, kexec, kernel modules, setting clocks,
// swap, reboot, quotas, open_by_handle_at (reaches files outside the mount namespace), and creating
// or entering namespaces or mounting without CAP_SYS_ADMIN (none of which the default set grants).
import { readFileSync } from 'node:fs';
import { isAbsolute, resolve } from 'node:path';
import { InvalidOptionsError } from '../errors.ts';

export type SeccompAction =
  | 'SCMP_ACT_ALLOW' | 'SCMP_ACT_ERRNO' | 'SCMP_ACT_KILL' | 'SCMP_ACT_KILL_PROCESS' | 'SCMP_ACT_KILL_THREAD'
  | 'SCMP_ACT_TRAP' | 'SCMP_ACT_LOG' | 'SCMP_ACT_TRACE';

export interface SeccompArg {
  index: number;
  value: number;
  valueTwo?: number;
  op: 'SCMP_CMP_NE' | 'SCMP_CMP_LT' | 'SCMP_CMP_LE' | 'SCMP_CMP_EQ' | 'SCMP_CMP_GE' | 'SCMP_CMP_GT' | 'SCMP_CMP_MASKED_EQ';
}

export interface SeccompRule { names: string[]; action: SeccompAction; errnoRet?: number; args?: SeccompArg[] }

/** The OCI runtime-spec's linux.seccomp (the subset vtc-runtime executes: no notify listener). */
export interface SeccompProfile {
  defaultAction: SeccompAction;
  defaultErrnoRet?: number;
  architectures?: string[];
  syscalls?: SeccompRule[];
}

const EPERM = 1;
const ENOSYS = 38;

// Calls any ordinary program may make: they act on the process itself, its files and sockets, or
// objects its namespaces already confine (System V IPC, message queues, hostname via setns-free calls).
const ALWAYS = [
  // files and directories
  'read', 'write', 'open', 'openat', 'openat2', 'close', 'close_range', 'creat', 'lseek', 'pread64', 'pwrite64', 'readv', 'writev',
  'preadv', 'pwritev', 'preadv2', 'pwritev2', 'sendfile', 'splice', 'tee', 'vmsplice', 'copy_file_range',
  'stat', 'fstat', 'lstat', 'newfstatat', 'statx', 'statfs', 'fstatfs', 'access', 'faccessat', 'faccessat2',
  'dup', 'dup2', 'dup3', 'pipe', 'pipe2', 'fcntl', 'flock', 'fsync', 'fdatasync', 'sync', 'syncfs', 'sync_file_range',
  'truncate', 'ftruncate', 'fallocate', 'fadvise64', 'readahead', 'getdents', 'getdents64', 'getcwd', 'chdir', 'fchdir',
  'rename', 'renameat', 'renameat2', 'mkdir', 'mkdirat', 'rmdir', 'link', 'linkat', 'unlink', 'unlinkat',
  'symlink', 'symlinkat', 'readlink', 'readlinkat', 'chmod', 'fchmod', 'fchmodat', 'fchmodat2', 'chown', 'fchown',
  'lchown', 'fchownat', 'umask', 'utime', 'utimes', 'utimensat', 'futimesat', 'mknod', 'mknodat', 'name_to_handle_at',
  'setxattr', 'lsetxattr', 'fsetxattr', 'getxattr', 'lgetxattr', 'fgetxattr', 'listxattr', 'llistxattr', 'flistxattr',
  'removexattr', 'lremovexattr', 'fremovexattr', 'setxattrat', 'getxattrat', 'listxattrat', 'removexattrat',
  'file_getattr', 'file_setattr', 'inotify_init', 'inotify_init1', 'inotify_add_watch', 'inotify_rm_watch', 'fanotify_mark',
  'chroot', 'ioctl', 'cachestat',
  // memory
  'brk', 'mmap', 'munmap', 'mprotect', 'mremap', 'msync', 'mincore', 'madvise', 'process_madvise', 'mlock', 'mlock2',
  'munlock', 'mlockall', 'munlockall', 'memfd_create', 'membarrier', 'remap_file_pages', 'get_mempolicy',
  'pkey_mprotect', 'pkey_alloc', 'pkey_free', 'mseal', 'map_shadow_stack',
  // processes, threads, scheduling
  'fork', 'vfork', 'execve', 'execveat', 'exit', 'exit_group', 'wait4', 'waitid', 'getpid', 'getppid', 'gettid',
  'getpgid', 'setpgid', 'getpgrp', 'getsid', 'setsid', 'uname', 'sysinfo', 'getrusage', 'times', 'getrlimit',
  'setrlimit', 'prlimit64', 'getpriority', 'setpriority', 'sched_yield', 'sched_setparam', 'sched_getparam',
  'sched_setscheduler', 'sched_getscheduler', 'sched_get_priority_max', 'sched_get_priority_min',
  'sched_rr_get_interval', 'sched_setaffinity', 'sched_getaffinity', 'sched_setattr', 'sched_getattr', 'getcpu',
  'prctl', 'arch_prctl', 'set_tid_address', 'set_robust_list', 'get_robust_list', 'rseq', 'futex', 'futex_waitv',
  'futex_wake', 'futex_wait', 'futex_requeue', 'set_thread_area', 'get_thread_area', 'capget', 'capset', 'seccomp',
  'ioprio_get', 'ioprio_set', 'ptrace', 'process_vm_readv', 'process_vm_writev', 'kcmp', 'pidfd_open',
  'pidfd_getfd', 'pidfd_send_signal', 'process_mrelease', 'landlock_create_ruleset', 'landlock_add_rule',
  'landlock_restrict_self', 'lsm_get_self_attr', 'lsm_list_modules', 'statmount', 'listmount',
  // identity (within the user namespace's mapped ids)
  'getuid', 'geteuid', 'getgid', 'getegid', 'getresuid', 'getresgid', 'getgroups', 'setuid', 'setgid', 'setreuid',
  'setregid', 'setresuid', 'setresgid', 'setgroups', 'setfsuid', 'setfsgid',
  // signals
  'rt_sigaction', 'rt_sigprocmask', 'rt_sigreturn', 'rt_sigpending', 'rt_sigtimedwait', 'rt_sigqueueinfo',
  'rt_sigsuspend', 'rt_tgsigqueueinfo', 'sigaltstack', 'kill', 'tkill', 'tgkill', 'pause', 'signalfd', 'signalfd4',
  'restart_syscall',
  // time (reading it; setting it is refused below)
  'time', 'gettimeofday', 'clock_gettime', 'clock_getres', 'clock_nanosleep', 'nanosleep', 'getitimer', 'setitimer',
  'alarm', 'timer_create', 'timer_settime', 'timer_gettime', 'timer_getoverrun', 'timer_delete', 'timerfd_create',
  'timerfd_settime', 'timerfd_gettime', 'adjtimex',
  // IPC (the sandbox's own ipc namespace)
  'shmget', 'shmat', 'shmctl', 'shmdt', 'semget', 'semop', 'semctl', 'semtimedop', 'msgget', 'msgsnd', 'msgrcv',
  'msgctl', 'mq_open', 'mq_unlink', 'mq_timedsend', 'mq_timedreceive', 'mq_notify', 'mq_getsetattr',
  // events and sockets
  'poll', 'ppoll', 'select', 'pselect6', 'epoll_create', 'epoll_create1', 'epoll_ctl', 'epoll_wait', 'epoll_pwait',
  'epoll_pwait2', 'eventfd', 'eventfd2', 'socket', 'socketpair', 'connect', 'accept', 'accept4', 'bind', 'listen',
  'getsockname', 'getpeername', 'setsockopt', 'getsockopt', 'sendto', 'recvfrom', 'sendmsg', 'recvmsg', 'sendmmsg',
  'recvmmsg', 'shutdown',
  // asynchronous I/O (the old interface: it performs ordinary reads and writes)
  'io_setup', 'io_destroy', 'io_getevents', 'io_pgetevents', 'io_submit', 'io_cancel',
  'getrandom',
];

// Calls the kernel itself reserves for a capability: allowed only when the sandbox's processes hold it.
const WITH_CAPABILITY: Record<string, string[]> = {
  CAP_SYS_ADMIN: [
    'mount', 'umount2', 'pivot_root', 'mount_setattr', 'move_mount', 'open_tree', 'open_tree_attr', 'fsopen', 'fsconfig',
    'fsmount', 'fspick', 'unshare', 'setns', 'clone3', 'sethostname', 'setdomainname', 'quotactl', 'quotactl_fd',
    'swapon', 'swapoff', 'syslog', 'lookup_dcookie', 'perf_event_open', 'bpf', 'fanotify_init',
  ],
  CAP_SYS_BOOT: ['reboot', 'kexec_load', 'kexec_file_load'],
  CAP_SYS_MODULE: ['init_module', 'finit_module', 'delete_module'],
  CAP_SYS_TIME: ['settimeofday', 'clock_settime', 'clock_adjtime', 'stime'],
  CAP_SYS_PACCT: ['acct'],
  CAP_SYS_RAWIO: ['iopl', 'ioperm'],
  CAP_SYS_NICE: ['mbind', 'set_mempolicy', 'migrate_pages', 'move_pages', 'set_mempolicy_home_node'],
  CAP_SYS_PTRACE: ['userfaultfd'],
  CAP_DAC_READ_SEARCH: ['open_by_handle_at'],
  CAP_SYS_TTY_CONFIG: ['vhangup'],
};

/** clone's namespace flags: NEWNS, NEWCGROUP, NEWUTS, NEWIPC, NEWUSER, NEWPID, NEWNET. */
const CLONE_NAMESPACE_FLAGS = 0x7e02_0000;

/** personality(): the ordinary personas and the query, not READ_IMPLIES_EXEC and its kind. */
const PERSONAS = [0x0, 0x8, 0x2_0000, 0x2_0008, 0xffff_ffff];

/** The default profile for a sandbox whose processes hold these capabilities. */
export function defaultSeccompProfile(capabilities: readonly string[]): SeccompProfile {
  const held = new Set(capabilities);
  const allowed = [...ALWAYS];
  for (const [cap, calls] of Object.entries(WITH_CAPABILITY)) if (held.has(cap)) allowed.push(...calls);
  const syscalls: SeccompRule[] = [{ names: allowed, action: 'SCMP_ACT_ALLOW' }];
  syscalls.push(held.has('CAP_SYS_ADMIN')
    ? { names: ['clone'], action: 'SCMP_ACT_ALLOW' }
    : { names: ['clone'], action: 'SCMP_ACT_ALLOW', args: [{ index: 0, value: CLONE_NAMESPACE_FLAGS, valueTwo: 0, op: 'SCMP_CMP_MASKED_EQ' }] });
  // clone3's flags sit in memory the filter cannot read: ENOSYS makes glibc fall back to clone.
  if (!held.has('CAP_SYS_ADMIN')) syscalls.push({ names: ['clone3'], action: 'SCMP_ACT_ERRNO', errnoRet: ENOSYS });
  for (const persona of PERSONAS) syscalls.push({ names: ['personality'], action: 'SCMP_ACT_ALLOW', args: [{ index: 0, value: persona, op: 'SCMP_CMP_EQ' }] });
  return { defaultAction: 'SCMP_ACT_ERRNO', defaultErrnoRet: EPERM, architectures: ['SCMP_ARCH_X86_64', 'SCMP_ARCH_AARCH64'], syscalls };
}

/** The `seccomp` option: 'default', 'unconfined', a path to an OCI seccomp JSON profile, or the profile itself. */
export type SeccompOption = 'default' | 'unconfined' | string | SeccompProfile;

const ACTIONS = new Set(['SCMP_ACT_ALLOW', 'SCMP_ACT_ERRNO', 'SCMP_ACT_KILL', 'SCMP_ACT_KILL_PROCESS', 'SCMP_ACT_KILL_THREAD', 'SCMP_ACT_TRAP', 'SCMP_ACT_LOG', 'SCMP_ACT_TRACE']);
const OPS = new Set(['SCMP_CMP_NE', 'SCMP_CMP_LT', 'SCMP_CMP_LE', 'SCMP_CMP_EQ', 'SCMP_CMP_GE', 'SCMP_CMP_GT', 'SCMP_CMP_MASKED_EQ']);

function invalid(where: string, message: string): never {
  throw new InvalidOptionsError('INVALID_SECCOMP_PROFILE', `seccomp${where}: ${message}`,
    { fix: 'give an OCI seccomp profile ({ defaultAction, syscalls: [{ names, action, args? }] }), "default" or "unconfined"' });
}

/** Checks a profile's shape here, so that a mistake is an InvalidOptionsError before anything is started. */
export function checkSeccompProfile(profile: unknown, where = ''): SeccompProfile {
  if (typeof profile !== 'object' || profile === null || Array.isArray(profile)) invalid(where, 'the profile must be an object');
  const p = profile as Record<string, unknown>;
  if (typeof p.defaultAction !== 'string' || !ACTIONS.has(p.defaultAction)) invalid(where, `defaultAction ${JSON.stringify(p.defaultAction)} is not one of ${[...ACTIONS].join(', ')}`);
  if ('listenerPath' in p) invalid(where, 'seccomp notification (listenerPath) is not supported');
  if (p.architectures !== undefined && (!Array.isArray(p.architectures) || p.architectures.some((a) => typeof a !== 'string'))) invalid(where, 'architectures must be an array of names like "SCMP_ARCH_X86_64"');
  if (p.syscalls !== undefined && !Array.isArray(p.syscalls)) invalid(where, 'syscalls must be an array');
  for (const [i, rule] of ((p.syscalls as unknown[] | undefined) ?? []).entries()) {
    const r = rule as Record<string, unknown>;
    if (!Array.isArray(r?.names) || r.names.some((n) => typeof n !== 'string')) invalid(`${where}.syscalls[${i}]`, 'names must be an array of syscall names');
    if (typeof r.action !== 'string' || !ACTIONS.has(r.action)) invalid(`${where}.syscalls[${i}]`, `action ${JSON.stringify(r.action)} is not supported`);
    for (const [j, arg] of ((r.args as unknown[] | undefined) ?? []).entries()) {
      const a = arg as Record<string, unknown>;
      if (!Number.isInteger(a?.index) || (a.index as number) < 0 || (a.index as number) > 5) invalid(`${where}.syscalls[${i}].args[${j}]`, 'index must be 0-5');
      if (typeof a.value !== 'number' || typeof a.op !== 'string' || !OPS.has(a.op)) invalid(`${where}.syscalls[${i}].args[${j}]`, 'needs a numeric value and an op like SCMP_CMP_EQ');
    }
  }
  return p as unknown as SeccompProfile;
}

/** The profile a sandbox gets: undefined means none (unconfined). */
export function seccompFor(option: SeccompOption | undefined, capabilities: readonly string[]): SeccompProfile | undefined {
  if (option === undefined || option === 'default') return defaultSeccompProfile(capabilities);
  if (option === 'unconfined') return undefined;
  if (typeof option === 'string') {
    const path = isAbsolute(option) ? option : resolve(option);
    let text: string;
    try {
      text = readFileSync(path, 'utf8');
    } catch (err) {
      throw new InvalidOptionsError('INVALID_SECCOMP_PROFILE', `seccomp: cannot read the profile ${path} (${(err as NodeJS.ErrnoException).code})`,
        { fix: 'give "default", "unconfined", or the path of an OCI seccomp JSON profile' });
    }
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch (err) {
      throw new InvalidOptionsError('INVALID_SECCOMP_PROFILE', `seccomp: ${path} is not JSON: ${(err as Error).message}`, { fix: 'give an OCI seccomp JSON profile' });
    }
    return checkSeccompProfile(parsed, ` (${path})`);
  }
  return checkSeccompProfile(option);
}
