#!/usr/bin/env bash
# The cgroup v2 lane: the cgroup tests, run for real in a throw-away QEMU guest
# whose only cgroup hierarchy is cgroup2 (this development host and some CI
# machines are cgroup v1 hybrid; most users' hosts are pure cgroup v2).
#
#   bash .ci/cgroup2-lane.sh [VITEST ARGS...]     (npm run test:cgroup2 [-- ARGS])
#
# Extra arguments go to Vitest in the guest (more test files, -t filters, ...).
# Environment:
#   RUN_IN_GUEST          the guest tool (default: ../shared/tools/run-in-guest.sh
#                         beside the repository, as in CI's checkout layout)
#   CGROUP2_GUEST_ARGS    extra run-in-guest.sh options, e.g. "-v" or "--kernel-version V"
#   CGROUP2_TIMEOUT       seconds before the guest is killed (default 480)
#   VTC_LEAK_CYCLES       start/stop cycles of lifecycle.test.ts in the guest (default 20)
#   CGROUP2_RETRY         Vitest's --retry in the guest (default 2; 0 to see every first failure)
#
# Needs root on the host only to apt-get install what is missing; the guest is
# root and its cgroup tree is ours to set up.
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)
NODE_BIN=$REPO/node_modules/node/bin      # the repository's Node 24 (devDependency "node")

# ------------------------------------------------------------------ in the guest
# The same script, re-entered inside the guest (the repository is shared at the
# same path). Prints what the kernel offers, runs Vitest, then checks that no
# sandbox cgroup was left behind.
if [ "${1:-}" = --in-guest ] && [ -z "${VTC_GUEST_ROOTED:-}" ]; then
  # The guest tool chroots us into the guest's root, which sits on the initramfs; the kernel makes
  # no user namespace for a chroot'ed process (every sandbox has one). In a mount namespace of our
  # own, do what switch_root does: leave the chroot, move the guest's root onto "/", enter it.
  exec unshare --mount --propagation private python3 -c '
import ctypes, os, sys
libc = ctypes.CDLL(None, use_errno=True)
dev = os.stat("/").st_dev
dev = "%d:%d" % (os.major(dev), os.minor(dev))
# where our root is mounted, as the initramfs (pid 1) sees it
guest_root = next(f[4] for f in (l.split() for l in open("/proc/1/mountinfo")) if f[2] == dev and f[3] == "/")
os.makedirs("/run/vtc-escape", exist_ok=True)
root = os.open("/", os.O_RDONLY)
os.chroot("/run/vtc-escape")
os.fchdir(root)
for _ in range(64): os.chdir("..")
os.chroot(".")
os.chdir(guest_root)
if libc.mount(b".", b"/", None, 8192, None) != 0:  # MS_MOVE
    raise OSError(ctypes.get_errno(), "moving the guest root onto /")
os.chroot(".")
os.environ["VTC_GUEST_ROOTED"] = "1"
os.execvp("bash", ["bash"] + sys.argv[1:])
' "$0" "$@"
fi
if [ "${1:-}" = --in-guest ]; then
  shift
  cd "$REPO"
  export PATH="$NODE_BIN:$REPO/node_modules/.bin:$PATH"
  cg=/sys/fs/cgroup
  if [ "$(stat -fc %T "$cg")" != cgroup2fs ] || grep -q ' - cgroup ' /proc/self/mountinfo; then
    echo "cgroup2-lane: $cg is not a pure cgroup2 hierarchy in the guest" >&2; exit 1
  fi
  # The guest is a machine we own entirely: give its root cgroup's children the
  # controllers the sandboxes need. (The library itself never changes a cgroup
  # it did not create; it would refuse with CGROUP_CONTROLLERS_MISSING.)
  want="memory cpu pids cpuset"
  for c in $want; do
    grep -qw "$c" "$cg/cgroup.subtree_control" || echo "+$c" > "$cg/cgroup.subtree_control"
  done
  echo "cgroup2-lane: guest kernel $(uname -r), node $(node --version), root subtree_control: $(cat "$cg/cgroup.subtree_control")"
  rc=0
  # One file at a time: the CPU-quota test measures, and the guest has 2 emulated CPUs.
  # Longer timeouts than on a host: everything here is 10-40x slower (Node starting
  # the owner fixture twice dominates lifecycle.test.ts's SIGKILL test).
  # --retry: Node itself crashes now and then under QEMU's emulation (SIGSEGV or SIGTRAP in a
  # fixture process, in one guest boot of four to eight; the same at earlier commits, never on a
  # real CPU; not seen with --smp 1, but two CPUs are what finds real races).
  VTC_LEAK_CYCLES=${VTC_LEAK_CYCLES:-20} vitest run --no-file-parallelism --retry="${CGROUP2_RETRY:-2}" --testTimeout=180000 --hookTimeout=180000 \
    test/runtime/limits.test.ts test/runtime/lifecycle.test.ts "$@" || rc=$?
  # Every sandbox cgroup must be gone, and with the last of them their default parent.
  left=$(find "$cg/vitest-container" -maxdepth 1 -type d 2>/dev/null || true)
  if [ -n "$left" ]; then
    echo "cgroup2-lane: sandbox cgroups left behind in the guest:" >&2
    echo "$left" >&2
    [ "$rc" != 0 ] || rc=1
  else
    echo "cgroup2-lane: no sandbox cgroup, nor their default parent $cg/vitest-container, left"
  fi
  exit "$rc"
fi

# ------------------------------------------------------------------ on the host
start=$SECONDS
cd "$REPO"

# (a) what the guest tool needs, installed only when missing
missing=()
for p in qemu-system-x86 busybox-static; do
  dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "cgroup2-lane: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
# The guest kernel is fetched once with apt-get download (then cached under
# ~/.cache/kvm-cgroup2): that needs package lists.
apt-cache show linux-image-amd64 >/dev/null 2>&1 || apt-get update -qq

RUN_IN_GUEST=${RUN_IN_GUEST:-$REPO/../shared/tools/run-in-guest.sh}
[ -x "$RUN_IN_GUEST" ] || [ -f "$RUN_IN_GUEST" ] || { echo "cgroup2-lane: $RUN_IN_GUEST not found (set RUN_IN_GUEST)" >&2; exit 1; }
[ -x "$NODE_BIN/node" ] || { echo "cgroup2-lane: $NODE_BIN/node not found: run npm ci first" >&2; exit 1; }

# (b) native/ is built here, where the compiler output can be trusted to be
# current; the guest then finds an up-to-date binary and does not rebuild.
"$NODE_BIN/node" native/build.mjs

# (c) the tests, inside the guest (it gets this script's exported environment)
guest_rc=0
# shellcheck disable=SC2086
bash "$RUN_IN_GUEST" --share "$REPO" --timeout "${CGROUP2_TIMEOUT:-480}" ${CGROUP2_GUEST_ARGS:-} \
  -- bash "$REPO/.ci/cgroup2-lane.sh" --in-guest "$@" || guest_rc=$?
echo "cgroup2-lane: exit $guest_rc after $((SECONDS - start)) s"
exit "$guest_rc"
