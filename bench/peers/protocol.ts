// Messages between the bench (runtime.bench.ts) and a peers' driver
// (driver.ts), one JSON object per line over the driver's stdin/stdout.

/** Lifecycle contenders the drivers run (ours runs in the bench process itself). */
/** 'node-spawn@driver': reference, the driver's own spawn of /bin/true (its fork+exec floor). */
export type PeerTool = 'crun' | 'runc' | 'bwrap' | 'bwrap-ovl' | 'podman' | 'node-spawn@driver';
/** Exec contenders: a long-running container of that runtime, then `<runtime> exec ... /bin/true`. */
export type ExecTool = 'crun' | 'runc';

export type Request =
  | { id: number; op: 'setup'; tool: PeerTool }
  /** Grow the driver's RSS to about rssBytes (touched ballast), so Node's fork() costs it what it costs the bench process. */
  | { id: number; op: 'pad'; rssBytes: number }
  | { id: number; op: 'run'; tool: PeerTool; i: number }
  | { id: number; op: 'exec-setup'; tool: ExecTool }
  | { id: number; op: 'exec'; tool: ExecTool }
  | { id: number; op: 'mem'; tool: ExecTool }
  | { id: number; op: 'exec-teardown'; tool: ExecTool };

export interface MemoryInfo { usageBytes: number; maxUsageBytes: number; processes: number }

export type Reply =
  | { id: number; ok: true; ms?: number; mem?: MemoryInfo; info?: string; /** the driver's own RSS (fork() cost grows with it) */ rssBytes?: number }
  | { id: number; ok: false; error: string };

export interface DriverOptions {
  work: string;
  rootfs: string;
  /** Replace /sys/fs/cgroup/unified with a throwaway tmpfs in the driver's mount namespace (crun 1.8 refuses hybrid hosts). */
  noUnified: boolean;
  /** Throwaway tmpfs over /run and /var/lib/containers in the driver's mount namespace (podman's state). */
  privateState: boolean;
  memoryBytes: number;
  cpus: number;
  pids: number;
}
