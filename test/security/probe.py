#!/usr/bin/env python3
"""Escape attempts, run inside a sandbox by test/security/*.test.ts.

    python3 probe.py NAME [ARG...]   ->  one JSON line: {"ok": bool, "errno": "EPERM" | null, "detail": ...}

"ok" means the attempt worked (an escape). Raw syscalls go through libc's syscall() with the
numbers of this machine's architecture, so a C library's fallbacks cannot hide what the kernel said.
"""
import ctypes, errno, json, os, platform, sys

libc = ctypes.CDLL(None, use_errno=True)
libc.syscall.restype = ctypes.c_long

NR = {
    'x86_64': dict(add_key=248, request_key=249, keyctl=250, io_uring_setup=425, userfaultfd=323, perf_event_open=298,
                   bpf=321, kexec_load=246, init_module=175, finit_module=313, clock_settime=227, settimeofday=164,
                   unshare=272, setns=308, mount=165, clone3=435, open_by_handle_at=304, swapon=167, reboot=169,
                   ptrace=101, fsopen=430, syslog=103),
    'aarch64': dict(add_key=217, request_key=218, keyctl=219, io_uring_setup=425, userfaultfd=282, perf_event_open=241,
                    bpf=280, kexec_load=104, init_module=105, finit_module=273, clock_settime=112, settimeofday=170,
                    unshare=97, setns=268, mount=40, clone3=435, open_by_handle_at=265, swapon=224, reboot=142,
                    ptrace=117, fsopen=430, syslog=116),
}[platform.machine()]

def sys_call(name, *args):
    r = libc.syscall(ctypes.c_long(NR[name]), *[ctypes.c_long(a) if isinstance(a, int) else a for a in args])
    return r, (ctypes.get_errno() if r < 0 else 0)

def result(ok, err=0, detail=None):
    print(json.dumps({'ok': ok, 'errno': errno.errorcode.get(err) if err else None, 'detail': detail}))
    sys.exit(0)

def attempt_syscall(name, *args):
    r, err = sys_call(name, *args)
    result(r >= 0, err, r)

def attempt_open(path, flags=os.O_RDONLY):
    try:
        fd = os.open(path, flags)
    except OSError as e:
        result(False, e.errno)
    data = os.read(fd, 64) if flags == os.O_RDONLY else b''
    result(True, 0, data.decode('latin1'))

name, args = sys.argv[1], sys.argv[2:]
KEY_SPEC_USER_KEYRING, KEY_SPEC_SESSION_KEYRING = -4, -3
KEYCTL_SEARCH, KEYCTL_READ, KEYCTL_GET_KEYRING_ID = 10, 11, 0

if name == 'mknod':  # mknod PATH MAJOR MINOR (block device), then open it for reading and writing
    path, major, minor = args[0], int(args[1]), int(args[2])
    try:
        os.mknod(path, 0o600 | (0o060000 if len(args) < 4 else 0o020000), os.makedev(major, minor))
    except OSError as e:
        result(False, e.errno, 'mknod')
    attempt_open(path, os.O_RDWR)
elif name == 'open':
    attempt_open(args[0])
elif name == 'write':
    try:
        with open(args[0], 'w') as f:
            f.write('escape')
    except OSError as e:
        result(False, e.errno)
    result(True)
elif name == 'keyctl-read':  # keyctl-read TYPE DESCRIPTION: search the user keyring, then read the key
    for keyring in (KEY_SPEC_USER_KEYRING, KEY_SPEC_SESSION_KEYRING):
        r, err = sys_call('keyctl', KEYCTL_SEARCH, keyring, ctypes.c_char_p(args[0].encode()), ctypes.c_char_p(args[1].encode()), 0)
        if r >= 0:
            buf = ctypes.create_string_buffer(256)
            n, err = sys_call('keyctl', KEYCTL_READ, r, buf, 256)
            result(n >= 0, err, buf.raw[:max(n, 0)].decode('latin1'))
    result(False, err)
elif name == 'session-keyring':  # the id of this process's session keyring (created if needed: 1)
    r, err = sys_call('keyctl', KEYCTL_GET_KEYRING_ID, KEY_SPEC_SESSION_KEYRING, 0)
    result(r >= 0, err, r)
elif name == 'io_uring_setup':
    params = ctypes.create_string_buffer(120)
    attempt_syscall('io_uring_setup', 4, params)
elif name == 'userfaultfd':
    attempt_syscall('userfaultfd', 0)
elif name == 'perf_event_open':
    attr = ctypes.create_string_buffer(128)
    ctypes.memmove(attr, (ctypes.c_uint32 * 2)(1, 128), 8)  # PERF_TYPE_SOFTWARE, size
    attempt_syscall('perf_event_open', attr, 0, -1, -1, 0)
elif name == 'bpf':
    attr = ctypes.create_string_buffer(128)
    attempt_syscall('bpf', 0, attr, 128)  # BPF_MAP_CREATE with a zeroed attr: EINVAL if it got that far
elif name == 'kexec_load':
    attempt_syscall('kexec_load', 0, 0, 0, 0)
elif name == 'init_module':
    attempt_syscall('finit_module', -1, ctypes.c_char_p(b''), 0)
elif name == 'clock_settime':
    ts = (ctypes.c_long * 2)(0, 0)
    attempt_syscall('clock_settime', 0, ts)
elif name == 'unshare':  # unshare FLAGS (hex)
    attempt_syscall('unshare', int(args[0], 16))
elif name == 'mount':
    attempt_syscall('mount', ctypes.c_char_p(b'none'), ctypes.c_char_p(b'/mnt'), ctypes.c_char_p(b'tmpfs'), 0, 0)
elif name == 'clone3':
    args_buf = ctypes.create_string_buffer(88)
    attempt_syscall('clone3', args_buf, 88)
elif name == 'open_by_handle_at':
    handle = ctypes.create_string_buffer(16)
    attempt_syscall('open_by_handle_at', -100, handle, 0)
elif name == 'ptrace-attach':  # ptrace-attach PID
    attempt_syscall('ptrace', 16, int(args[0]), 0, 0)  # PTRACE_ATTACH
elif name == 'status':  # the kernel's view of this process's confinement
    fields = {}
    for line in open('/proc/%s/status' % (args[0] if args else 'self')):
        k, _, v = line.partition(':')
        if k in ('Uid', 'CapEff', 'CapPrm', 'CapBnd', 'NoNewPrivs', 'Seccomp'):
            fields[k] = v.strip()
    result(True, 0, fields)
else:
    print('unknown probe ' + name, file=sys.stderr)
    sys.exit(2)
