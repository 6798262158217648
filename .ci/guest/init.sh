#!/bin/busybox sh
# PID 1 of the throwaway guest (see run.sh). It builds the root the command
# runs in: the host's / (9p, read-only) under a tmpfs overlay, the shared
# directories writable on top, and /sys/fs/cgroup as a pure cgroup2 tree with
# every controller passed to the root's children. Then it runs /ctl/cmd as root,
# its stdout and stderr going to the serial ports ttyS1 and ttyS2, and powers
# off after writing the command's exit code to /ctl/rc.
/bin/busybox --install -s /bin
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev

status=125
power_off() {
  echo "$status" > /ctl/rc.new && mv /ctl/rc.new /ctl/rc
  sync
  poweroff -f
}
fatal() {
  echo "guest init: $*" > /dev/ttyS2
  status=125
  power_off
}

while read -r module; do
  insmod "/modules/$module.ko" || echo "guest init: insmod $module failed"
done < /modules/load-order

mkdir -p /ctl /host /layer /root-fs
p9="trans=virtio,version=9p2000.L,msize=512000"
mount -t 9p -o "$p9,cache=mmap" ctl /ctl || { echo "guest init: no control directory"; poweroff -f; }
mount -t 9p -o "ro,$p9,cache=loose" host /host || fatal "cannot mount the host's root"
mount -t tmpfs -o mode=0755,size=60% layer /layer || fatal "tmpfs"
mkdir /layer/upper /layer/work
mount -t overlay -o lowerdir=/host,upperdir=/layer/upper,workdir=/layer/work root /root-fs || fatal "overlay"

r=/root-fs
mount -t proc proc $r/proc || fatal "proc"
mount -t sysfs sysfs $r/sys || fatal "sysfs"
mount -t cgroup2 -o nsdelegate cgroup2 $r/sys/fs/cgroup || fatal "cgroup2"
mount -t devtmpfs devtmpfs $r/dev || fatal "devtmpfs"
mkdir -p $r/dev/pts $r/dev/shm
mount -t devpts -o newinstance,ptmxmode=0666,mode=0620 devpts $r/dev/pts
ln -sf pts/ptmx $r/dev/ptmx
mount -t tmpfs -o mode=1777 shm $r/dev/shm
mount -t tmpfs -o mode=0755 run $r/run
mount -t tmpfs -o mode=1777 tmp $r/tmp
mkdir -p $r/run/guest-ctl && mount --bind /ctl $r/run/guest-ctl

# The working directory, when the fresh /tmp or /run above hid it: the host's, under a writable layer.
n=0
while read -r dir; do
  mkdir -p "$r$dir" /layer/exposed$n/upper /layer/exposed$n/work
  mount -t overlay -o "lowerdir=/host$dir,upperdir=/layer/exposed$n/upper,workdir=/layer/exposed$n/work" "exposed$n" "$r$dir" || fatal "cannot bring in $dir"
  n=$((n + 1))
done < /ctl/exposed

n=0
while read -r dir; do
  mkdir -p "$r$dir"
  mount -t 9p -o "$p9,cache=mmap" "share$n" "$r$dir" || fatal "cannot mount the shared $dir"
  n=$((n + 1))
done < /ctl/shares

# Every controller the kernel has, passed down from the root: what a cgroup v2
# host running systemd looks like.
for c in $(cat $r/sys/fs/cgroup/cgroup.controllers); do
  echo "+$c" > $r/sys/fs/cgroup/cgroup.subtree_control || echo "guest init: cannot enable $c"
done
hostname vtc-guest
ip link set lo up

# Pipes, not ttys (as in CI): the serial ports are raw, fed by cat.
stty -F /dev/ttyS1 raw -echo
stty -F /dev/ttyS2 raw -echo
mkfifo /out /err
cat /out > /dev/ttyS1 & out_pid=$!
cat /err > /dev/ttyS2 & err_pid=$!
echo "guest init: ready after $(cut -d' ' -f1 /proc/uptime) s, kernel $(uname -r), cgroup2 controllers: $(cat $r/sys/fs/cgroup/cgroup.subtree_control)" > /dev/console
# The command's root is the new root moved over /, in a mount namespace of its own (as
# switch_root does): a process that is merely chrooted may not create user namespaces.
unshare -m sh -c 'cd "$1" && mount --move . / && exec chroot . /bin/sh /run/guest-ctl/cmd' sh $r < /dev/null > /out 2> /err
status=$?
# Whatever the command left running may hold the pipes open.
for p in /proc/[0-9]*; do
  p=${p#/proc/}
  case " 1 $$ $out_pid $err_pid " in *" $p "*) ;; *) kill -KILL "$p" 2> /dev/null ;; esac
done
wait $out_pid $err_pid
umount $r/run/guest-ctl
power_off
