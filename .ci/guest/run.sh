#!/usr/bin/env bash
# Runs a command as root in a throwaway QEMU guest whose only cgroup hierarchy
# is cgroup2, with every controller (most CI machines and laptops look like
# this; this project's development host is cgroup v1 hybrid).
#
#   bash .ci/guest/run.sh [--share DIR]... [--smp N] [--mem SIZE] [--timeout SEC] [-v] -- COMMAND [ARG...]
#
# The guest sees the host's / read-only under a throwaway writable layer; each
# --share DIR is writable, at the same path, and its writes reach the host.
# /tmp and /run are fresh tmpfs (a working directory under them, a checkout in
# /tmp say, is brought in on top: read from the host, its writes thrown away
# with the guest). The command starts in the same directory with
# the same exported environment, stdin /dev/null, stdout and stderr pipes
# streamed here; this script exits with its exit code (125: the guest failed
# before the command could end, 124: --timeout).
#
# Needs (Debian): qemu-system-x86, busybox-static, xz-utils, and apt-get to
# fetch the kernel: the current linux-image-amd64 is downloaded once (never
# installed) into $VTC_GUEST_CACHE (default ~/.cache/vtc-guest) with the few
# modules the guest loads (virtio, 9p, overlay). No root and no KVM needed:
# without /dev/kvm QEMU emulates the CPU (TCG), 10-40x slower than the host.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)
cache=${VTC_GUEST_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/vtc-guest}
shares=() smp=2 mem=2G timeout=0 verbose=0

fail() { echo "guest: $*" >&2; exit 125; }
while (($#)); do
  case $1 in
    --share) shares+=("$(cd "$2" && pwd -P)") || fail "--share $2: no such directory"; shift 2 ;;
    --smp) smp=$2; shift 2 ;;
    --mem) mem=$2; shift 2 ;;
    --timeout) timeout=$2; shift 2 ;;
    -v) verbose=1; shift ;;
    --) shift; break ;;
    *) fail "unknown option $1 (see the comment at the top of $0)" ;;
  esac
done
(($#)) || fail "no command given"
command -v qemu-system-x86_64 > /dev/null || fail "qemu-system-x86_64 is missing: apt-get install qemu-system-x86"
busybox=$(command -v busybox || true)
[ -n "$busybox" ] && ! ldd "$busybox" > /dev/null 2>&1 || fail "a static busybox is needed: apt-get install busybox-static"

# The modules the guest loads, and those they need (in the order they load).
wanted_modules=(virtio_pci 9pnet_virtio 9p overlay)

mkdir -p "$cache"
exec 8> "$cache/lock"
flock 8 # one run at a time prepares the kernel and initramfs

# ------------------------------------------------------------------- kernel
# A kernel with the guest's modules: one in /boot, or Debian's generic kernel
# unpacked into the cache. Sets kver, vmlinuz, moddir.
module_file() { find "$1/kernel" -name "$2.ko*" -print -quit; }
usable_kernel() { [ -f "$1" ] && [ -n "$(module_file "$2" 9pnet_virtio)" ]; }

find_kernel() {
  local v
  for v in $(ls /boot "$cache/kernel/boot" 2> /dev/null | sed -n 's/^vmlinuz-//p' | sort -rV); do
    for base in "" "$cache/kernel"; do
      if usable_kernel "$base/boot/vmlinuz-$v" "$base/lib/modules/$v"; then
        kver=$v vmlinuz=$base/boot/vmlinuz-$v moddir=$base/lib/modules/$v
        return 0
      fi
    done
  done
  return 1
}

fetch_kernel() {
  local package dir
  package=$(apt-cache depends linux-image-amd64 2> /dev/null | sed -n 's/^ *Depends: \(linux-image-[^ ]*\)$/\1/p' | head -n1)
  [ -n "$package" ] || fail "apt-cache knows no linux-image-amd64: run apt-get update"
  echo "guest: fetching $package into $cache (once)" >&2
  dir=$(mktemp -d "$cache/fetch.XXXXXX")
  (cd "$dir" && apt-get download "$package" > /dev/null 2>&1) || { rm -rf "$dir"; fail "apt-get download $package failed"; }
  dpkg-deb -x "$dir"/*.deb "$dir/x"
  local v=${package#linux-image-}
  mkdir -p "$cache/kernel/boot" "$cache/kernel/lib/modules/$v/kernel"
  cp "$dir/x/boot/vmlinuz-$v" "$dir/x/boot/config-$v" "$cache/kernel/boot/"
  # The directories that hold what wanted_modules need (~10 MB of ~400).
  for sub in fs net/9p drivers/virtio; do
    mkdir -p "$cache/kernel/lib/modules/$v/kernel/$(dirname "$sub")"
    cp -r "$dir/x/lib/modules/$v/kernel/$sub" "$cache/kernel/lib/modules/$v/kernel/$sub"
  done
  cp "$dir/x/lib/modules/$v/modules.builtin" "$cache/kernel/lib/modules/$v/"
  rm -rf "$dir"
}

find_kernel || { fetch_kernel; find_kernel; } || fail "no kernel with 9p modules in /boot nor in $cache"

# Under emulation, a compressed kernel spends ~2.5 s unpacking itself on every
# boot. A kernel built with PVH can be booted as the plain ELF inside it, which
# is unpacked here once.
elf_kernel() {
  local out=$cache/vmlinux-$kver part
  [ -s "$out" ] && { echo "$out"; return; }
  grep -q '^CONFIG_PVH=y' "$(dirname "$vmlinuz")/config-$kver" 2> /dev/null || return 1
  # The payload starts at an xz stream header (Debian's kernels are xz-compressed).
  for offset in $(LC_ALL=C grep -obUaP '\xFD7zXZ\x00' "$vmlinuz" | cut -d: -f1); do
    part=$out.part.$$
    tail -c +$((offset + 1)) "$vmlinuz" | xz -dc --single-stream > "$part" 2> /dev/null || true
    if [ "$(head -c4 "$part" | od -An -tx1 | tr -d ' \n')" = 7f454c46 ]; then
      mv "$part" "$out"
      echo "$out"
      return
    fi
    rm -f "$part"
  done
  return 1
}
kernel_image=$(elf_kernel) || kernel_image=$vmlinuz

# ---------------------------------------------------------------- initramfs
module_deps() { # the depends= field of a module's .modinfo
  local f=$1
  case $f in *.xz) xz -dc "$f" ;; *.zst) zstd -qdc "$f" ;; *) cat "$f" ;; esac | tr '\0' '\n' | sed -n 's/^depends=//p' | tr ',' ' '
}

build_initramfs() {
  local out=$1 tree loaded=" " order=()
  tree=$(mktemp -d "$cache/initramfs.XXXXXX")
  mkdir -p "$tree/bin" "$tree/modules" "$tree/proc" "$tree/sys" "$tree/dev"
  cp "$busybox" "$tree/bin/busybox"
  cp "$here/init.sh" "$tree/init"
  chmod 0755 "$tree/init"
  add_module() {
    local name=$1 file dep
    case $loaded in *" $name "*) return ;; esac
    loaded="$loaded$name "
    file=$(module_file "$moddir" "$name")
    if [ -z "$file" ]; then
      grep -q "/$name.ko" "$moddir/modules.builtin" 2> /dev/null && return
      fail "kernel $kver has no module $name"
    fi
    for dep in $(module_deps "$file"); do add_module "$dep"; done
    case $file in *.xz) xz -dc "$file" ;; *.zst) zstd -qdc "$file" ;; *) cat "$file" ;; esac > "$tree/modules/$name.ko"
    order+=("$name")
  }
  for m in "${wanted_modules[@]}"; do add_module "$m"; done
  printf '%s\n' "${order[@]}" > "$tree/modules/load-order"
  (cd "$tree" && find . | LC_ALL=C sort | "$busybox" cpio -o -H newc 2> /dev/null | gzip -1) > "$out.new"
  mv "$out.new" "$out"
  rm -rf "$tree"
}

initramfs=$cache/initramfs-$kver-$(cat "$here/init.sh" "$0" | sha256sum | cut -c1-12).cpio.gz
if [ ! -s "$initramfs" ]; then
  rm -f "$cache"/initramfs-"$kver"-*.cpio.gz
  build_initramfs "$initramfs"
fi
exec 8>&-

# ----------------------------------------------------------------------- run
ctl=$(mktemp -d "${TMPDIR:-/tmp}/vtc-guest.XXXXXX")
qemu_pid="" cat_pids=()
cleanup() {
  [ -z "$qemu_pid" ] || kill "$qemu_pid" 2> /dev/null || true
  for p in "${cat_pids[@]}"; do kill "$p" 2> /dev/null || true; done
  rm -rf "$ctl"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

{
  while IFS= read -r name; do
    case $name in PWD | OLDPWD | SHLVL | _ | TMPDIR) continue ;; esac
    printf 'export %s=%q\n' "$name" "${!name}"
  done < <(compgen -e)
  printf 'cd %q || exit 125\n' "$PWD"
  printf 'exec'
  printf ' %q' "$@"
  printf '\n'
} > "$ctl/cmd"
printf '%s\n' "${shares[@]+"${shares[@]}"}" | sed '/^$/d' > "$ctl/shares"
case $PWD/ in /tmp/* | /run/*) printf '%s\n' "$PWD" ;; esac > "$ctl/exposed"

# The guest's serial ports 1 and 2 write into these fifos; cat copies them to
# our stdout and stderr, whatever those are.
mkfifo "$ctl/out" "$ctl/err"
cat "$ctl/out" & cat_pids+=($!)
cat "$ctl/err" >&2 & cat_pids+=($!)

escape() { printf '%s' "${1//,/,,}"; } # a comma in a QEMU option value is written twice
if [ -w /dev/kvm ] && [ ! -d /sys/module/kvm_pvm ]; then
  accel=(-accel kvm -cpu host)
else
  # tb-size: the translation cache (1 GiB by default) in 256 MiB is as fast here.
  accel=(-accel tcg,thread=multi,tb-size=256 -cpu max)
fi
qemu=(qemu-system-x86_64 "${accel[@]}" -smp "$smp" -m "$mem" -machine pc -bios /usr/share/qemu/qboot.rom
  -nodefaults -no-user-config -display none -no-reboot
  -chardev "file,id=console,path=$(escape "$ctl/console.log")" -serial chardev:console
  -chardev "file,id=out,path=$(escape "$ctl/out")" -serial chardev:out
  -chardev "file,id=err,path=$(escape "$ctl/err")" -serial chardev:err
  -kernel "$kernel_image" -initrd "$initramfs"
  -append "console=ttyS0 quiet loglevel=4 panic=-1 cgroup_no_v1=all random.trust_cpu=on"
  -fsdev "local,id=host,path=/,security_model=none,readonly=on,multidevs=remap" -device virtio-9p-pci,fsdev=host,mount_tag=host
  -fsdev "local,id=ctl,path=$(escape "$ctl"),security_model=none" -device virtio-9p-pci,fsdev=ctl,mount_tag=ctl)
for i in "${!shares[@]}"; do
  qemu+=(-fsdev "local,id=share$i,path=$(escape "${shares[$i]}"),security_model=none,multidevs=remap"
    -device "virtio-9p-pci,fsdev=share$i,mount_tag=share$i")
done
limit=()
[ "$timeout" = 0 ] || limit=(timeout -k 5 "$timeout")

"${limit[@]}" "${qemu[@]}" < /dev/null &
qemu_pid=$!
set +e
wait "$qemu_pid"
qemu_status=$?
set -e
qemu_pid=""
# A QEMU that died before opening a fifo leaves its cat blocked in open().
exec 6<> "$ctl/out" 7<> "$ctl/err"
exec 6>&- 7>&-
wait "${cat_pids[@]}" 2> /dev/null || true
cat_pids=()
if [ "$verbose" = 1 ]; then
  echo "---- guest console ----" >&2
  cat "$ctl/console.log" >&2 || true
fi
[ ! -f "$ctl/rc" ] || exit "$(cat "$ctl/rc")"
if [ "$qemu_status" = 124 ]; then
  echo "guest: timed out after $timeout s" >&2
  exit 124
fi
echo "guest: QEMU ended ($qemu_status) before the command did; the console's last lines:" >&2
tail -n 30 "$ctl/console.log" >&2 || true
exit 125
