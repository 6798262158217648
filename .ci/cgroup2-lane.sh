#!/usr/bin/env bash
# The cgroup v2 lanes: the cgroup tests for real, in a throwaway QEMU guest whose
# only cgroup hierarchy is cgroup2 (.ci/guest/run.sh). This development host is
# cgroup v1 hybrid; most CI machines and laptops are pure cgroup v2.
#
#   bash .ci/cgroup2-lane.sh [root|rootless]...      (npm run test:cgroup2 [-- root])
#
# Lanes (both by default, in one guest boot):
#   root      host class: a CI machine on cgroup v2, tests run as root (GitHub's
#             ubuntu runners with sudo, most self-hosted runners).
#   rootless  host class: a developer laptop with systemd. The tests run as an
#             unprivileged user in a leaf of a cgroup subtree delegated to them,
#             made like systemd's user@UID.service (Delegate=pids memory cpu:
#             user-UID.slice passes those controllers on, user@UID.service is
#             the user's, with init.scope for the user manager and app.slice
#             holding the test process), and nothing configured for us.
# Each lane also prints `doctor`'s report (README's troubleshooting table).
#
# Environment: CGROUP2_TIMEOUT (seconds, default 900), CGROUP2_SMP (guest CPUs,
# default 2), VTC_LEAK_CYCLES (lifecycle.test.ts, default 20 here).
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)
NODE_BIN=$REPO/node_modules/node/bin # the repository's Node 24 (devDependency "node")
TESTS=(test/runtime/limits.test.ts test/runtime/lifecycle.test.ts)
SECURITY_TESTS=(test/security/escapes.test.ts)

# ------------------------------------------------------------------ in the guest
if [ "${1:-}" = --in-guest ]; then
  shift
  cd "$REPO"
  export PATH="$NODE_BIN:$REPO/node_modules/.bin:$PATH"
  cg=/sys/fs/cgroup
  if [ "$(stat -fc %T $cg)" != cgroup2fs ] || grep -q ' - cgroup ' /proc/self/mountinfo; then
    echo "cgroup2-lane: $cg is not a pure cgroup2 hierarchy in the guest" >&2
    exit 1
  fi
  echo "cgroup2-lane: guest kernel $(uname -r), node $(node --version), root passes: $(cat $cg/cgroup.subtree_control)"
  user=vtc-rootless
  id -u $user > /dev/null 2>&1 || useradd --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin $user
  uid=$(id -u $user) gid=$(id -g $user)
  export VTC_LEAK_CYCLES=${VTC_LEAK_CYCLES:-20}
  # Read by tests that skip here what the cgroup version does not change (vitest.test.ts's spares).
  export VTC_EMULATED_GUEST=1
  # Every Node process the tests start compiles the sources again; with a cache, once.
  export NODE_COMPILE_CACHE=/tmp/node-compile-cache
  # One file at a time: the CPU-quota test measures, and the guest's CPUs are emulated, 10-40x
  # slower than the host's (hence the long timeouts).
  # --configLoader native: Vite's bundling loader writes into node_modules, which the user may not.
  vitest_args=(run --configLoader native --no-file-parallelism --testTimeout=180000 --hookTimeout=180000)
  status=0

  # Node itself crashes now and then under QEMU's emulation (SIGSEGV or SIGTRAP in some process, in
  # one guest boot of four to eight; never on a real CPU). When the guest's kernel logged such a
  # crash, the files that failed run once more (and the lane says so); any other failure stands.
  run_tests() { # $1 = lane, then the command that runs Vitest
    local lane=$1 report=/tmp/vitest-report-$1.json seen failed crashes
    shift
    seen=$(dmesg | wc -l)
    "$@" --reporter=default --reporter=json --outputFile.json="$report" && return 0
    crashes=$(dmesg | tail -n +$((seen + 1)) | grep -E 'segfault at|trap int3|trap invalid opcode' || true)
    [ -n "$crashes" ] || return 1
    failed=$(node -e 'for (const f of JSON.parse(require("fs").readFileSync(process.argv[1], "utf8")).testResults) if (f.status === "failed") console.log(f.name)' "$report")
    echo "cgroup2-lane($lane): a process crashed under emulation, as the guest's kernel logged:"
    echo "$crashes"
    echo "cgroup2-lane($lane): the files that failed run once more:" $failed
    "$@" $failed
  }

  # The same for a single command (doctor): killed by SIGILL, SIGTRAP, SIGBUS or SIGSEGV (exit 128+n), it
  # runs once more, and the lane says so; any other outcome stands.
  crash_retry() {
    local rc=0
    "$@" || rc=$?
    case $rc in
      132 | 133 | 135 | 139) echo "cgroup2-lane: $1 $2 $3 crashed (exit $rc) under emulation: once more"; "$@" ;;
      *) return $rc ;;
    esac
  }

  # Sandbox cgroups gone, and with the last of them their default parent.
  no_leftovers() { # $1 = lane, $2 = the default parent's directory
    local left
    left=$(find "$2" -mindepth 1 -maxdepth 1 -type d 2> /dev/null || true)
    if [ -n "$left" ] || [ -d "$2" ]; then
      echo "cgroup2-lane($1): left behind: $2 ${left//$'\n'/ }" >&2
      return 1
    fi
    echo "cgroup2-lane($1): no sandbox cgroup, nor their default parent $2, left"
  }

  for lane in "$@"; do
    start=$SECONDS
    case $lane in
      root)
        echo "=== cgroup2-lane(root): a CI machine on cgroup v2, tests as root"
        crash_retry node src/cli/main.ts doctor --memory 64m --cpus 0.5 --pids 64 || status=1
        # vitest.test.ts: the Vitest environment, its files' sandboxes started by the run's sandbox service
        run_tests root vitest "${vitest_args[@]}" "${TESTS[@]}" test/runtime/cgroup-placement.test.ts "${SECURITY_TESTS[@]}" test/security/host-root.test.ts test/runner/vitest.test.ts || status=1
        no_leftovers root $cg/vitest-container || status=1
        ;;
      rootless)
        echo "=== cgroup2-lane(rootless): a developer laptop with systemd, tests as $user in its delegated user@$uid.service"
        slice=$cg/user.slice/user-$uid.slice manager=$cg/user.slice/user-$uid.slice/user@$uid.service
        mkdir -p "$manager/init.scope" "$manager/app.slice/vtc-tests.scope"
        # systemd: the slices pass on what user@.service delegates (Delegate=pids memory cpu)...
        for d in $cg $cg/user.slice $slice; do echo "+pids +memory +cpu" > $d/cgroup.subtree_control; done
        # ...and hands user@UID.service to the user, as it does a delegated unit (the directory,
        # cgroup.procs, cgroup.subtree_control, cgroup.threads); the user manager (here a sleeping
        # stand-in) lives in init.scope and makes the rest of the subtree as the user.
        chown $uid:$gid "$manager" "$manager"/cgroup.{procs,subtree_control,threads}
        chown -R $uid:$gid "$manager/init.scope" "$manager/app.slice"
        echo "+pids +memory +cpu" > "$manager/cgroup.subtree_control"
        setpriv --reuid=$uid --regid=$gid --init-groups sleep 100000 & manager_pid=$!
        echo $manager_pid > "$manager/init.scope/cgroup.procs"
        home=$(mktemp -d) && chown $uid:$gid "$home"
        as_user() { # the test process, in its leaf, as the user
          sh -c 'echo $$ > "$1/app.slice/vtc-tests.scope/cgroup.procs" && shift && exec "$@"' sh "$manager" \
            setpriv --reuid=$uid --regid=$gid --init-groups -- env -i HOME="$home" USER=$user PATH="$PATH" \
            VTC_LEAK_CYCLES="$VTC_LEAK_CYCLES" NODE_COMPILE_CACHE="$home/.node-compile-cache" NO_COLOR=1 "$@"
        }
        crash_retry as_user node src/cli/main.ts doctor --memory 64m --cpus 0.5 --pids 64 || status=1
        # Limits, and the lifecycle tests that involve cgroups (the rest run the same code as the root lane's)
        run_tests rootless as_user node_modules/.bin/vitest "${vitest_args[@]}" -t 'limits|start/stop cycles|SIGKILL of the owning process' "${TESTS[@]}" || status=1
        # The escapes a default sandbox refuses, on cgroup v2 and as a user too.
        run_tests rootless as_user node_modules/.bin/vitest "${vitest_args[@]}" "${SECURITY_TESTS[@]}" || status=1
        no_leftovers rootless "$manager/vitest-container" || status=1
        kill $manager_pid
        ;;
      *) echo "cgroup2-lane: unknown lane $lane (root, rootless)" >&2; exit 2 ;;
    esac
    echo "cgroup2-lane($lane): $((SECONDS - start)) s"
  done
  exit $status
fi

# ------------------------------------------------------------------ on the host
start=$SECONDS
cd "$REPO"
lanes=("$@")
((${#lanes[@]})) || lanes=(root rootless)
missing=()
for p in qemu-system-x86 busybox-static xz-utils; do
  dpkg -s "$p" > /dev/null 2>&1 || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "cgroup2-lane: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" > /dev/null
fi
# The guest's kernel is fetched once with apt-get download: that needs package lists.
apt-cache show linux-image-amd64 > /dev/null 2>&1 || apt-get update -qq
[ -x "$NODE_BIN/node" ] || { echo "cgroup2-lane: $NODE_BIN/node not found: run npm install first" >&2; exit 1; }
# native/ is built here: the guest then finds it current and does not build it again.
"$NODE_BIN/node" native/build.mjs

status=0
# The checkout is not shared writable: the guest reads it with the rest of this machine's files
# (9p with caching: a writable share is read uncached, and Node's start took 2-3x as long), and
# what the tests write there is thrown away with the guest.
bash "$REPO/.ci/guest/run.sh" --smp "${CGROUP2_SMP:-2}" --timeout "${CGROUP2_TIMEOUT:-900}" \
  -- bash "$REPO/.ci/cgroup2-lane.sh" --in-guest "${lanes[@]}" || status=$?
echo "cgroup2-lane: ${lanes[*]}: exit $status after $((SECONDS - start)) s"
exit $status
