// Layers shared by several recipes. A layer's blob depends only on itself and the
// layers below it, so every image that starts with the same layers shares their blobs.
import type { LayerSpec } from '../lib/recipe.ts';

/**
 * Packages that only maintainer scripts, dpkg or an init system use. We do their
 * work ourselves (accounts, dirs, links) and never run anything at install time, so
 * they would be dead weight: perl alone is 40 MB.
 */
export const MAINTAINER_ONLY = [
  'adduser', 'passwd', 'login', 'debconf', 'debconf-2.0', 'ucf', 'dpkg', 'usrmerge',
  'perl', 'perl-base', 'init-system-helpers', 'lsb-base', 'sysvinit-utils', 'systemd',
  'systemd-sysv', 'logrotate', 'cron', 'sensible-utils', 'debianutils', 'ssl-cert',
  'locales', 'libc-l10n',
];

/**
 * The root of every image: busybox as the shell and userland (sh, ls, id, ...: what
 * entrypoint scripts and `container.exec` need), the accounts every system has,
 * and the files glibc and friends look for. Alone, it is the `busybox` image.
 */
export const busyboxLayer: LayerSpec = {
  name: 'busybox',
  packages: ['busybox-static'],
  leaveOut: MAINTAINER_ONLY,
  busyboxApplets: true,
  prune: ['usr/share/initramfs-tools'],
  users: [
    { name: 'root', uid: 0, gid: 0, home: '/root', shell: '/bin/sh' },
    { name: 'nobody', uid: 65534, gid: 65534, home: '/nonexistent' },
  ],
  groups: [
    { name: 'root', gid: 0 },
    { name: 'tty', gid: 5 },
    { name: 'users', gid: 100 },
    { name: 'nogroup', gid: 65534 },
  ],
  // What a runtime mounts over (proc, sys, dev) must exist; tmp dirs are sticky.
  dirs: [
    { path: '/dev' }, { path: '/proc' }, { path: '/sys' }, { path: '/run' }, { path: '/home' },
    { path: '/root', mode: 0o700 }, { path: '/tmp', mode: 0o1777 }, { path: '/var/tmp', mode: 0o1777 },
    { path: '/var/lib' }, { path: '/var/log' }, { path: '/usr/local/bin' }, { path: '/usr/local/sbin' },
  ],
  symlinks: [{ path: '/var/run', target: '../run' }],
  files: [
    { path: '/etc/nsswitch.conf', content: 'passwd: files\ngroup: files\nshadow: files\nhosts: files dns\nnetworks: files\nprotocols: files\nservices: files\n' },
    { path: '/etc/hosts', content: '127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n' },
  ],
};

/** glibc with its C.UTF-8 locale, time zones and /etc/services: what Debian's programs expect. */
export const debianLayer: LayerSpec = {
  name: 'debian',
  packages: ['libc6', 'libc-bin', 'tzdata', 'netbase'],
  // Systemd units, init scripts and cron jobs never run in a container.
  prune: ['etc/init.d', 'etc/rc?.d', 'lib/systemd', 'usr/lib/systemd', 'etc/cron.*', 'etc/logrotate.d'],
  files: [{ path: '/etc/timezone', content: 'Etc/UTC\n' }],
  symlinks: [{ path: '/etc/localtime', target: '/usr/share/zoneinfo/Etc/UTC' }],
};

/** The same prune for service layers. */
export const SERVICE_PRUNE = debianLayer.prune ?? [];
