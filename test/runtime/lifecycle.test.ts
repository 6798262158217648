// Nothing leaks: 1000 start/stop cycles leave the host as it was, and a
// sandbox never outlives the process that started it, even one killed by SIGKILL.
import { spawn } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { describe, expect, test } from 'vitest';
import { hostInfo, startContainer } from '../../src/runtime/index.ts';
import { canLimit, descendants, isRoot, isSpawner, mountCount, netnsCount, openFds, pidAlive, sandboxCgroups } from '../helpers/host.ts';

const limits = canLimit() ? { memory: '64m', cpus: 0.5, pids: 16 } : {};

describe('lifecycle', () => {
  test('1000 start/stop cycles leave no mounts, cgroups, processes, fds or network namespaces', async () => {
    // warm up: first start builds caches and reaps
    await (await startContainer({ ...limits, cmd: ['true'] })).wait();
    // Other test files run beside this one: count only what this process made.
    // The one long-lived `vtc-runtime spawner` (see src/runtime/launch.ts) is not a sandbox's.
    const sandboxProcs = () => descendants().filter((pid) => !isSpawner(pid)).length;
    // wait() resolves when the monitor's sockets close, which happens as it exits: it may still be
    // an exiting task or a zombie, not yet reaped by the spawner, for a moment after. A leak stays.
    const settle = async () => {
      for (const deadline = performance.now() + 2000; sandboxProcs() > 0 && performance.now() < deadline;) await sleep(10);
    };
    await settle();
    const snapshot = () => ({ mounts: mountCount(), cgroups: sandboxCgroups('vitest-container', true).length, procs: sandboxProcs(),
      fds: openFds(), netns: netnsCount(), bundles: readdirSync(hostInfo().runRoot).filter((n) => n.startsWith(`c${process.pid}-`)).length });
    const before = snapshot();
    const cycles = Number(process.env.VTC_LEAK_CYCLES ?? 1000);
    for (let i = 0; i < cycles; i++) {
      if (i % 10 === 0) {
        // every tenth: a long-running sandbox, used and stopped
        const c = await startContainer({ ...limits });
        expect((await c.exec(['true'])).exitCode).toBe(0);
        await c.stop();
      } else {
        const c = await startContainer({ ...limits, cmd: ['true'] });
        expect((await c.wait()).exitCode).toBe(0);
      }
    }
    await settle();
    expect(snapshot()).toEqual(before);
    expect(before.procs).toBe(0);
    expect(descendants().filter(isSpawner).length).toBeLessThanOrEqual(1);
  }, 300_000);

  test('an owner that calls process.exit() without stopping its sandboxes leaves nothing: no process, cgroup or bundle', async () => {
    const owner = spawn(process.execPath, [fileURLToPath(new URL('../fixtures/owner.ts', import.meta.url)), JSON.stringify(limits), 'exit'], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let out = '';
    owner.stdout!.on('data', (c: Buffer) => { out += c.toString(); });
    await new Promise((resolve) => owner.on('close', resolve));
    const { pids, ids } = JSON.parse(out.trim()) as { pids: number[]; ids: string[] };
    // The sandboxes would run forever: this bound is only "they end", not how fast.
    const deadline = performance.now() + 20_000;
    while (pids.some(pidAlive) && performance.now() < deadline) await sleep(10);
    expect(pids.filter(pidAlive)).toEqual([]);
    // no reaper involved: the exiting process removed them itself
    expect(sandboxCgroups().filter((p) => ids.some((id) => p.endsWith(id)))).toEqual([]);
    expect(ids.filter((id) => existsSync(`${hostInfo().runRoot}/${id}`))).toEqual([]);
  });

  test('a process that used sandboxes and stopped them ends by itself: no timer, socket or helper holds it open', async () => {
    const child = spawn(process.execPath, [fileURLToPath(new URL('../fixtures/exits-by-itself.ts', import.meta.url))], { stdio: ['ignore', 'pipe', 'inherit'] });
    let done = false;
    child.stdout!.on('data', (c: Buffer) => { if (c.toString().includes('done')) done = true; });
    const exit = await new Promise<number | string>((resolve) => {
      // Only "it ends": what could hold it open (the exec's background job, the waits' deadline timers)
      // would hold it for an hour. Generous, as in the emulated cgroup2 guest the sandboxes' python
      // alone can take many seconds to start.
      const guard = setTimeout(() => { child.kill('SIGKILL'); resolve(`still running after 150 s, ${done ? 'after' : 'before'} its work was done`); }, 150_000);
      child.on('exit', (c, signal) => { clearTimeout(guard); resolve(c ?? signal!); });
    });
    expect(exit).toBe(0);
    expect(done).toBe(true);
  }, 170_000);

  test('SIGKILL of the owning process takes its sandboxes with it; the next start reaps its cgroups', async () => {
    const owner = spawn(process.execPath, [fileURLToPath(new URL('../fixtures/owner.ts', import.meta.url)), JSON.stringify(limits)], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    const line = await new Promise<string>((resolve, reject) => {
      let out = '';
      owner.stdout!.on('data', (c: Buffer) => {
        out += c.toString();
        if (out.includes('\n')) resolve(out.trim());
      });
      owner.on('exit', (code, signal) => reject(new Error(`owner exited early (${code ?? signal})`)));
    });
    const { pids, ids } = JSON.parse(line) as { pids: number[]; ids: string[] };
    expect(pids).toHaveLength(3);
    for (const pid of pids) expect(pidAlive(pid)).toBe(true);
    const killedAt = performance.now();
    owner.kill('SIGKILL');
    // The sandboxes would run forever: this bound is only "they end", not how fast.
    while (pids.some(pidAlive) && performance.now() - killedAt < 20_000) await sleep(10);
    expect(pids.filter(pidAlive)).toEqual([]);
    // The owner could not clean up after itself: its bundles and cgroups are still there...
    const leftovers = () => [...sandboxCgroups().filter((p) => ids.some((id) => p.endsWith(id))),
      ...ids.filter((id) => existsSync(`${hostInfo().runRoot}/${id}`)),
      // its spawner's socket too
      ...readdirSync(hostInfo().runRoot).filter((n) => n.startsWith(`c${owner.pid}-`) && n.endsWith('.sock'))];
    expect(leftovers().length).toBeGreaterThan(0);
    // ...until a later run starts: the reaper removes them. (A fresh process, since each reaps once.)
    const next = spawn(process.execPath, [fileURLToPath(new URL('../fixtures/owner.ts', import.meta.url)), JSON.stringify(limits), 'once'], { stdio: 'ignore' });
    await new Promise((resolve) => next.on('exit', resolve));
    expect(leftovers()).toEqual([]);
  });

  test.runIf(canLimit())('processes that start and stop sandboxes at once never trip over the default cgroup parent, which goes with its last sandbox', async () => {
    // Each stop removes the default parent when it was the last one in it, while the other process
    // may be making it for its next sandbox: a creation that loses a level to that removal makes it again.
    const code = `
      const { startContainer } = await import(${JSON.stringify(new URL('../../src/runtime/index.ts', import.meta.url).href)});
      for (let i = 0; i < 60; i++) { const c = await startContainer({ memory: '64m', pids: 16, cmd: ['true'] }); await c.wait(); }
      console.log('done');`;
    const run = () => new Promise<string>((resolve) => {
      const child = spawn(process.execPath, ['--input-type=module', '-e', code], { stdio: ['ignore', 'pipe', 'pipe'] });
      let out = '';
      child.stdout.on('data', (c: Buffer) => { out += c.toString(); });
      child.stderr.on('data', (c: Buffer) => { out += c.toString(); });
      // A process that died without a word says how (Node itself crashes now and then in the emulated cgroup2 guest).
      child.on('close', (exitCode, signal) => resolve(out.trim() || `exited ${exitCode ?? signal}`));
    });
    expect(await Promise.all([run(), run(), run()])).toEqual(['done', 'done', 'done']);
  }, 120_000);
});
