// For the demo only: in `containerPool()` the test file's own worker is the
// sandbox, and no file environment records what it used. This setup file reads
// the worker's cgroup (cgroup v1 or v2) after the file's last test and puts it in
// the file's task meta, where the package's reporter (vitest-environment-container/reporter)
// finds it, as it finds a file environment's. Best effort: when the
// cgroup files are not readable, the row shows dashes.
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll } from 'vitest';

function read(path: string): string | undefined {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return undefined;
  }
}

function ownCgroup(): { peakMemoryBytes: number; cpuSeconds: number; oomKills: number } | undefined {
  const lines = (read('/proc/self/cgroup') ?? '').trim().split('\n').map((l) => l.split(':'));
  const path = (controller: string): string | undefined => lines.find((l) => l[1]!.split(',').includes(controller))?.[2];
  const v1 = path('memory');
  if (v1 && v1 !== '/' && existsSync('/sys/fs/cgroup/memory')) {
    const peak = read(join('/sys/fs/cgroup/memory', v1, 'memory.max_usage_in_bytes'));
    const cpu = read(join('/sys/fs/cgroup/cpuacct', path('cpuacct') ?? v1, 'cpuacct.usage'));
    const oom = /oom_kill (\d+)/.exec(read(join('/sys/fs/cgroup/memory', v1, 'memory.oom_control')) ?? '');
    if (peak === undefined || cpu === undefined) return undefined;
    return { peakMemoryBytes: Number(peak), cpuSeconds: Number(cpu) / 1e9, oomKills: Number(oom?.[1] ?? 0) };
  }
  const v2 = lines.find((l) => l[0] === '0')?.[2];
  if (!v2 || v2 === '/') return undefined;
  const dir = join('/sys/fs/cgroup', v2);
  const peak = read(join(dir, 'memory.peak'));
  const usec = /usage_usec (\d+)/.exec(read(join(dir, 'cpu.stat')) ?? '');
  const oom = /oom_kill (\d+)/.exec(read(join(dir, 'memory.events')) ?? '');
  if (peak === undefined || !usec) return undefined;
  return { peakMemoryBytes: Number(peak), cpuSeconds: Number(usec[1]) / 1e6, oomKills: Number(oom?.[1] ?? 0) };
}

afterAll(({}, suite) => {
  const used = ownCgroup();
  if (used) (suite.meta as Record<string, unknown>).container = { ...used, image: 'host (pool worker)' };
});
