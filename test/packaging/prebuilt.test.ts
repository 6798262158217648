// The runtimes the tarball ships: a static binary per architecture, each for the machine its
// name says, and each one working — the host's natively, the other under user-mode emulation
// (qemu-aarch64 or qemu-x86_64). QEMU's user mode has no clone3 and cannot start a sandbox, so
// the emulated smoke run covers what needs none: the binary starts, answers `features`, and
// serves as a run's shared spawner (socket, lock, greeting, a request answered, gone with its owner).
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { createConnection } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, test } from 'vitest';
import { packedTarball } from '../helpers/packed-project.ts';
import { elfInfo, TARGETS } from '../../native/build.mjs';

const dir = mkdtempSync(join(tmpdir(), 'vtc-prebuilt-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const EMULATOR: Record<string, string> = { arm64: 'qemu-aarch64', x64: 'qemu-x86_64' };

function onPath(tool: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${tool}`]).status === 0;
}

/** The tarball's binary for arch, extracted. */
async function shipped(arch: string): Promise<string> {
  const member = `package/native/prebuilt/linux-${arch}/vtc-runtime`;
  const out = join(dir, arch);
  if (!existsSync(join(out, member))) {
    spawnSync('mkdir', ['-p', out]);
    const r = spawnSync('tar', ['-xzf', (await packedTarball()).path, '-C', out, member]);
    if (r.status !== 0) throw new Error(`tar: ${r.stderr.toString()}`);
  }
  return join(out, member);
}

/** How to run a binary for arch here: directly, or under QEMU's user mode. */
function runner(arch: string, binary: string): string[] {
  return arch === process.arch ? [binary] : [EMULATOR[arch]!, binary];
}

function lines(stream: NodeJS.ReadableStream): () => Promise<string> {
  let buffered = '';
  const waiting: ((line: string) => void)[] = [];
  stream.on('data', (chunk: Buffer) => {
    buffered += chunk.toString();
    let nl: number;
    while ((nl = buffered.indexOf('\n')) >= 0 && waiting.length) {
      const line = buffered.slice(0, nl);
      buffered = buffered.slice(nl + 1);
      waiting.shift()!(line);
    }
  });
  return () => new Promise((resolve) => {
    const nl = buffered.indexOf('\n');
    if (nl >= 0) {
      const line = buffered.slice(0, nl);
      buffered = buffered.slice(nl + 1);
      resolve(line);
    } else waiting.push(resolve);
  });
}

function exited(child: ChildProcess): Promise<number | null> {
  return child.exitCode !== null ? Promise.resolve(child.exitCode) : new Promise((resolve) => child.once('exit', (code) => resolve(code)));
}

describe.each(Object.keys(TARGETS))('the shipped linux-%s runtime', (arch) => {
  const emulated = arch !== process.arch;
  // CI installs QEMU's user mode (.ci/run); elsewhere its absence skips the emulated runs, said once.
  const runnable = !emulated || onPath(EMULATOR[arch]!) || process.env.CI === 'true';
  if (!runnable) console.warn(`${EMULATOR[arch]} is not installed (Debian: qemu-user): the linux-${arch} runtime is not smoke-run`);

  test('is a static executable for its machine', async () => {
    const info = elfInfo(await shipped(arch)) as { machine: number; dynamic: boolean };
    expect(info).toEqual({ machine: TARGETS[arch].elfMachine, dynamic: false });
  }, 600_000);

  test.runIf(runnable)(`runs${emulated ? ` under ${EMULATOR[arch]}` : ''}: features`, async () => {
    const [cmd, ...args] = runner(arch, await shipped(arch));
    const r = spawnSync(cmd!, [...args, 'features'], { encoding: 'utf8' });
    expect(r.status, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({ ociVersionMax: '1.2.0' });
  }, 600_000);

  test.runIf(runnable)(`serves as a shared spawner${emulated ? ` under ${EMULATOR[arch]}` : ''}`, async () => {
    const [cmd, ...args] = runner(arch, await shipped(arch));
    const owner = spawn('sleep', ['600']);
    const socket = join(dir, `${arch}.sock`);
    const spawner = spawn(cmd!, [...args, 'spawner', '--listen', socket, '--owner', String(owner.pid)], { stdio: ['ignore', 'pipe', 'inherit'] });
    try {
      expect(await lines(spawner.stdout!)()).toBe('ready');
      const client = createConnection(socket);
      const next = lines(client);
      expect(await next()).toBe('hello');
      client.write('features\n');
      // Started (ok), or refused with the reason (under QEMU without binfmt an ARM binary cannot
      // execute itself: err 8, ENOEXEC): either way the request was read, spawned and answered.
      expect(await next()).toMatch(emulated ? /^(ok|err 8)$/ : /^ok$/);
      client.destroy();
      owner.kill();
      expect(await exited(spawner)).toBe(0);
      expect(existsSync(socket)).toBe(false);
    } finally {
      owner.kill();
      spawner.kill('SIGKILL');
    }
  }, 600_000);
});
