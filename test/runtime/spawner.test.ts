// The spawner that starts runtime processes for Node: shared by a test run's worker
// processes, one per thread otherwise; failures surface at once, not after the connect timeout.
import { spawn } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { constants } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { Worker } from 'node:worker_threads';
import { describe, expect, test } from 'vitest';
import { startContainer } from '../../src/runtime/start.ts';
import { runtimeBinary } from '../../src/runtime/native.ts';
import { hostInfo } from '../../src/runtime/host.ts';
import { sharedSpawners } from '../helpers/host.ts';

const repo = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const { errno } = constants;
const errnoName = (n: number) => Object.entries(errno).find(([, v]) => v === n)?.[0] ?? `errno ${n}`;
const runtime = (file: string) => JSON.stringify(pathToFileURL(join(repo, 'src', 'runtime', file)).href);

describe('spawner', () => {
  test('worker threads of one process each start sandboxes, at the same time, without colliding', async () => {
    const code = `
      import { parentPort } from 'node:worker_threads';
      const { startContainer } = await import(${runtime('start.ts')});
      const out = [];
      for (let i = 0; i < 5; i++) {
        const c = await startContainer({ cmd: ['sleep', '100'] });
        out.push((await c.exec(['sh', '-c', 'echo $0-' + i, c.hostname])).stdout.trim());
        await c.writeFile('/tmp/mine', c.id);
        out.push((await c.readFile('/tmp/mine')).toString() === c.id ? 'own file' : 'wrong file');
        await c.stop();
      }
      parentPort.postMessage(out);`;
    const run = () => new Promise<string[]>((resolve, reject) => {
      const w = new Worker(new URL(`data:text/javascript,${encodeURIComponent(code)}`));
      w.once('message', resolve).once('error', reject);
    });
    const results = await Promise.all([run(), run(), run()]);
    for (const r of results) {
      expect(r.filter((l) => l === 'own file')).toHaveLength(5);
      expect(r.filter((l) => /^sbx-.*-\d$/.test(l))).toHaveLength(5);
    }
  });

  test('a test run\'s shared spawner that is killed is replaced: the next start neither fails nor waits out the connect timeout', async () => {
    // A "worker" of a run whose main process is this test process: an IPC channel and VITEST_POOL_ID.
    const code = `
      const { prewarmRuntime } = await import(${runtime('launch.ts')});
      const { hostInfo } = await import(${runtime('host.ts')});
      const { startContainer } = await import(${runtime('start.ts')});
      prewarmRuntime(hostInfo().runRoot, { testWorker: true });
      const once = async () => { const c = await startContainer({ cmd: ['sleep', '100'] }); const r = await c.exec(['echo', 'ok']); await c.stop(); return r.stdout.trim(); };
      process.send({ first: await once() });
      process.once('message', async () => {
        const second = await once().catch((e) => e.code);
        process.send({ second });
        process.disconnect();
      });`;
    const child = spawn(process.execPath, ['--input-type=module', '-e', code], {
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'], env: { ...process.env, VITEST_POOL_ID: '1' },
    });
    const messages: Record<string, unknown>[] = [];
    const next = () => new Promise<Record<string, unknown>>((resolve) => child.once('message', (m) => resolve(m as Record<string, unknown>)));
    messages.push(await next());
    expect(messages[0]).toEqual({ first: 'ok' });
    const [daemon] = sharedSpawners(process.pid);
    expect(daemon).toBeDefined(); // the worker used the run's shared spawner
    process.kill(daemon!, 'SIGKILL');
    child.send('again');
    messages.push(await next());
    // A launch that waited out the connect timeout would have failed (RUNTIME_DID_NOT_CONNECT), not said ok.
    expect(messages[1]!.second).toBe('ok');
    // ...and it went through a new shared spawner, not a private one of the worker's.
    const replacements = sharedSpawners(process.pid);
    expect(replacements).toHaveLength(1);
    expect(replacements[0]).not.toBe(daemon);
    await new Promise((resolve) => child.once('exit', resolve));
    // The replacement ends (by a stop signal here; normally with the run) and takes its socket with it.
    for (const pid of sharedSpawners(process.pid)) process.kill(pid, 'SIGTERM');
    for (let i = 0; i < 100 && sharedSpawners(process.pid).length; i++) await new Promise((r) => setTimeout(r, 20));
    expect(sharedSpawners(process.pid)).toEqual([]);
    const runRoot = hostInfo().runRoot;
    const own = existsSync(runRoot) ? readdirSync(runRoot).filter((f) => f.startsWith(`c${process.pid}-`) && /\.\d+\.sock/.test(f)) : [];
    // The replacement took over the killed one's socket path (its lock died with it) and removed both files.
    expect(own).toEqual([]);
  });

  test('an argument too long for the kernel is refused at once, with a typed error', async () => {
    const c = await startContainer({ cmd: ['sleep', '100'] });
    try {
      await expect(c.exec(['sh', '-c', `echo ${'x'.repeat(140_000)}`])).rejects.toMatchObject({ code: 'ARGUMENTS_TOO_LONG' });
      expect((await c.exec(['echo', 'still fine'])).stdout).toBe('still fine\n');
    } finally {
      await c.stop();
    }
  });

  test('a request line longer than the spawner reads is refused whole: no part of it runs as a command', async () => {
    const child = spawn(runtimeBinary(), ['spawner'], { stdio: ['pipe', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.on('data', (c: Buffer) => { out += c.toString(); });
    // 1 MiB of padding, then what would be a command of its own if the rest of the line were read as one.
    child.stdin.write(`${'x'.repeat(1 << 20)}\tfeatures\n`);
    child.stdin.write('features\n');
    for (let i = 0; i < 200 && !out.includes('ok\n'); i++) await new Promise((r) => setTimeout(r, 10));
    child.stdin.end();
    await new Promise((resolve) => child.once('close', resolve));
    const lines = out.split('\n').filter(Boolean);
    // Replies come in request order ("ok", or "err <errno>"; see native/spawner.c): the long line is
    // refused as too long, the next line runs, and only it (its output is the features document).
    const replies = lines.filter((l) => l === 'ok' || l.startsWith('err '));
    expect(replies.map((r) => (r === 'ok' ? 'ok' : errnoName(Number(r.slice(4)))))).toEqual(['E2BIG', 'ok']);
    expect(lines.filter((l) => l.startsWith('{"ociVersionMin"'))).toHaveLength(1);
  });
});
