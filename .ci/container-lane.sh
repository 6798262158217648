#!/usr/bin/env bash
# The container lanes: the tests inside a podman container, as CI jobs run in
# GitLab's docker executor and on most self-hosted runners.
#
#   bash .ci/container-lane.sh [defaults|privileged]...     (both by default)
#
#   defaults    host class: a CI job in a container with the engine's defaults
#               (its seccomp profile, no CAP_SYS_ADMIN, /sys/fs/cgroup read-only),
#               as root and as a user. Sandboxes cannot run there: the lane checks
#               that the error and `doctor` name the container's restriction and
#               the fix (--privileged, GitLab runner privileged = true).
#   privileged  host class: the same job with --privileged (GitLab runner
#               privileged = true): a representative part of the suite passes.
#
# The container's root is this machine's own / under a throwaway overlay (podman
# --rootfs /:O): no registry is needed, and the checkout, node_modules and the
# built native/ are there as they are here. podman keeps all its state in a
# directory of ours, in a mount namespace of its own; its cgroups go under
# /vtc-container-lane, removed at the end. Needs root (podman with cgroupfs).
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)
NODE=$REPO/node_modules/node/bin/node
CGROUP_PARENT=/vtc-container-lane

# ------------------------------------------------- in a private mount namespace
if [ "${1:-}" = --in-namespace ]; then
  shift
  work=$1
  shift
  # podman writes to /run/containers, /run/libpod and /var/lib/containers whatever --root says:
  # those are throwaway here.
  mount -t tmpfs vtc-lane /run/containers 2> /dev/null || { mkdir -p /run/containers && mount -t tmpfs vtc-lane /run/containers; }
  mkdir -p /run/libpod /var/lib/containers
  mount -t tmpfs vtc-lane /run/libpod
  mount -t tmpfs vtc-lane /var/lib/containers
  export TMPDIR=$work/tmp
  mkdir -p "$TMPDIR"
  podman=(podman --root "$work/storage" --runroot "$work/run" --tmpdir "$work/tmp" --cgroup-manager cgroupfs
    --events-backend file --runtime runc)
  # As root, podman raises RLIMIT_NOFILE/NPROC to the kernel's maximum, which root on a host
  # without CAP_SYS_RESOURCE cannot: explicit limits below the host's own.
  run=("${podman[@]}" run --rm --network none --cgroup-parent "$CGROUP_PARENT/podman" --ulimit nofile=16384:16384
    --ulimit nproc=16384:16384 --tmpfs /tmp:notmpcopyup --workdir "$REPO" --env NO_COLOR=1 --env CI="${CI:-}"
    --env VTC_LEAK_CYCLES="${VTC_LEAK_CYCLES:-100}") # (1000 in npm test's own run)
  # The container's /tmp is its own: a checkout under /tmp is brought in on top (its writes thrown away).
  case $REPO/ in /tmp/*) run+=(--volume "$REPO:$REPO:O") ;; esac
  uid=$(id -u vtc-rootless) gid=$(id -g vtc-rootless)
  status=0
  expect() { # $1 = what, $2 = output file, $3 = a regular expression it must match
    if grep -Eq "$3" "$2"; then echo "container-lane: ok: $1"; else echo "container-lane: FAILED: $1 (no /$3/ in:)" >&2; cat "$2" >&2; status=1; fi
  }
  for lane in "$@"; do
    start=$SECONDS
    case $lane in
      defaults)
        echo "=== container-lane(defaults): a CI job in a container with the engine's defaults (seccomp profile, no CAP_SYS_ADMIN, read-only cgroupfs)"
        for who in root user; do
          as=()
          [ $who = root ] || as=(--user "$uid:$gid" --env HOME=/tmp)
          out=$work/defaults-$who.txt
          "${run[@]}" "${as[@]}" --rootfs /:O "$NODE" src/cli/main.ts doctor > "$out" 2>&1 || true
          cat "$out"
          expect "doctor as $who names the seccomp profile" "$out" '^! confinement: the podman container this process runs in has a seccomp filter'
          # root: its seccomp profile refuses the namespaces; a user: newuidmap lacks CAP_SYS_ADMIN (not in the container's bounding set)
          expect "doctor as $who: the sandbox probe fails naming the container's restriction" "$out" \
            "^✗ sandbox: .*was refused .*the podman container this process runs in forbids it: (it filters system calls with a seccomp profile|newuidmap \\(setuid root\\) writes the map with CAP_SYS_ADMIN)"
          expect "doctor as $who gives the fix" "$out" 'fix: run that container with --privileged \(GitLab runner: privileged = true'
          "${run[@]}" "${as[@]}" --rootfs /:O "$NODE" src/cli/main.ts doctor --memory 64m > "$out" 2>&1 || true
          expect "doctor --memory 64m as $who names the read-only cgroupfs" "$out" '^✗ cgroups: .*/sys/fs/cgroup is mounted read-only by the podman container'
        done
        ;;
      privileged)
        echo "=== container-lane(privileged): the same job with --privileged (GitLab runner privileged = true)"
        out=$work/privileged.txt
        "${run[@]}" --privileged --rootfs /:O "$NODE" src/cli/main.ts doctor --memory 64m --cpus 0.5 --pids 64 2>&1 | tee "$out" || status=1
        # Left out here, each for a reason of the container's (and reported):
        # - writes to /etc: inside a container /etc holds the engine's bind mounts (hosts, resolv.conf),
        #   so image host shows it as a read-only bind, not under the throwaway layer;
        # - the OOM test reads the kernel log for the sandbox's cgroup path, which the container's
        #   cgroup mounts name differently;
        # - the cgroupParent test removes its parent at once, while the container's cgroup v1
        #   hierarchies still hold the sandbox's exiting processes (EBUSY).
        skip='writes go to a throwaway layer|an OOM kill names the limit and the file|the parent stays after the sandbox'
        "${run[@]}" --privileged --rootfs /:O "$NODE" node_modules/vitest/vitest.mjs run -t "^(?!.*($skip))" \
          test/runtime/sandbox.test.ts test/runtime/limits.test.ts test/runtime/lifecycle.test.ts test/runtime/network.test.ts \
          test/runtime/refusals.test.ts test/runner/vitest.test.ts test/cli/doctor.test.ts || status=1
        ;;
      *) echo "container-lane: unknown lane $lane (defaults, privileged)" >&2; exit 2 ;;
    esac
    echo "container-lane($lane): $((SECONDS - start)) s"
  done
  "${podman[@]}" rm --all --force > /dev/null 2>&1 || true
  exit $status
fi

# ------------------------------------------------------------------ on the host
start=$SECONDS
cd "$REPO"
lanes=("$@")
((${#lanes[@]})) || lanes=(defaults privileged)
[ "$(id -u)" = 0 ] || { echo "container-lane: needs root (podman with cgroupfs)" >&2; exit 1; }
missing=()
for p in podman runc; do dpkg -s "$p" > /dev/null 2>&1 || missing+=("$p"); done
if ((${#missing[@]})); then
  echo "container-lane: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" > /dev/null
fi
id vtc-rootless > /dev/null 2>&1 || useradd --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin vtc-rootless
"$NODE" native/build.mjs

work=$(mktemp -d /var/tmp/vtc-container-lane.XXXXXX) # not under /tmp: the container gets a fresh /tmp
cleanup() {
  # podman's cgroups (and any of ours inside them), deepest first, in every hierarchy
  for root in /sys/fs/cgroup /sys/fs/cgroup/*; do
    [ -d "$root$CGROUP_PARENT" ] && find "$root$CGROUP_PARENT" -depth -type d -exec rmdir {} \; 2> /dev/null
  done
  left=$(ls -d /sys/fs/cgroup$CGROUP_PARENT /sys/fs/cgroup/*$CGROUP_PARENT 2> /dev/null || true)
  [ -z "$left" ] || echo "container-lane: cgroups left: $left" >&2
  rm -rf "$work"
}
trap cleanup EXIT
status=0
unshare --mount --propagation private -- bash "$0" --in-namespace "$work" "${lanes[@]}" || status=$?
# The containers' cgroup hierarchies are rooted at their own cgroups, under ours: any sandbox
# cgroup (or default parent) the tests inside left is there.
left=$(find /sys/fs/cgroup -path "*$CGROUP_PARENT/*" -type d -name 'vitest-container*' 2> /dev/null || true)
if [ -n "$left" ]; then
  echo "container-lane: the tests in the containers left cgroups behind:" $left >&2
  status=1
fi
echo "container-lane: ${lanes[*]}: exit $status after $((SECONDS - start)) s"
exit $status
