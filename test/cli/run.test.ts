// `run`: commands piped into a real sandbox, its exit code passed through, and
// nothing left behind afterwards (processes, cgroups, bundles), Ctrl-C included.
import { spawn, spawnSync } from 'node:child_process';
import { chmodSync, cpSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, test } from 'vitest';
import { ensureImages, imagePath } from '../../examples/shared/ensure-images.ts';
import { isSupportedNode } from '../../src/node-version.ts';
import { isRoot } from '../helpers/host.ts';
import { cli, cliAsUser, leftoversOf, repo, rootlessUserReady, unprivilegedUser } from './helpers.ts';

const nothing = { runtimes: [], cgroups: [], bundles: [] };

describe.runIf(isRoot)('run', () => {
  test('piped commands run in the sandbox, the exit code comes back, nothing is left', () => {
    const r = cli(['run', 'host', '--', 'sh'], { input: 'hostname; echo "pid=$$"; exit 3\n' });
    expect(r.status, r.stderr).toBe(3);
    const [hostname, pid] = r.stdout.trim().split('\n');
    expect(hostname).toMatch(new RegExp(`^sbx-\\d+-${r.pid}$`));
    expect(pid).not.toBe(`pid=${r.pid}`); // its own pid namespace
    expect(r.stderr).toMatch(/sandbox c\d+-\d+-\d+-\d+ \(image host\) started/);
    expect(r.stderr).toMatch(/removed/);
    expect(leftoversOf(r.pid!)).toEqual(nothing);
  });

  test('the default command is a shell reading stdin; options reach the sandbox (limits, env, mounts, workdir)', () => {
    // Last, the pids limit: 40 background sleeps asked for, the fork refused once 20 processes run
    // (the shell among them; pid 1 is not counted). Counted with shell builtins only: no fork left.
    const r = cli(['run', 'host', '--memory', '64m', '--pids', '20', '-e', 'GREETING=hi there', '-v', `${repo}:/src:ro`, '-w', '/src'], {
      input: 'echo "$GREETING"; pwd; test -f package.json && echo mounted; touch x 2>/dev/null || echo read-only; tail /dev/zero; echo "tail=$?"\n' +
        '(for i in $(seq 1 40); do sleep 3600 & done) 2>/dev/null; set -- /proc/[0-9]*; echo "processes=$#"\n',
    });
    expect(r.status, r.stderr).toBe(0);
    const lines = r.stdout.trim().split('\n');
    expect(lines.slice(0, 4)).toEqual(['hi there', '/src', 'mounted', 'read-only']);
    // tail keeps /dev/zero's endless "line" in memory: the 64m limit ends it (SIGKILL: 128 + 9).
    expect(lines[4]).toBe('tail=137');
    // pid 1, the shell and the sleeps that fit: 21 at most (42 without the limit), and it did fill up.
    const processes = Number(/^processes=(\d+)$/.exec(lines[5] ?? '')?.[1]);
    expect(processes).toBeLessThanOrEqual(21);
    expect(processes).toBeGreaterThanOrEqual(15);
    expect(leftoversOf(r.pid!)).toEqual(nothing);
  });

  test('-p forwards a port of the sandbox: the test reaches the service at the address run prints', async () => {
    const child = spawn(process.execPath, [join(repo, 'src/cli/main.ts'), 'run', 'host', '-p', '7000', '--', 'python3', '-m', 'http.server', '7000', '--directory', '/etc'],
      { stdio: ['pipe', 'pipe', 'pipe'] });
    let stderr = '';
    child.stderr.setEncoding('utf8').on('data', (c: string) => { stderr += c; });
    child.stdout.resume();
    try {
      let port = 0;
      let status = 0;
      // Polled until the server answers; the deadline only turns a hang into a message.
      for (const deadline = Date.now() + 30_000; status !== 200 && Date.now() < deadline; await new Promise((r) => setTimeout(r, 100))) {
        port = Number(/ports: 7000 → 127\.0\.0\.1:(\d+)/.exec(stderr)?.[1] ?? 0);
        if (port) status = await fetch(`http://127.0.0.1:${port}/hostname`).then((res) => res.status, () => 0);
      }
      expect(port, stderr).toBeGreaterThan(0);
      expect(status, stderr).toBe(200);
    } finally {
      child.kill('SIGINT');
      await new Promise((resolve) => child.on('close', resolve));
    }
    expect(leftoversOf(child.pid!)).toEqual(nothing);
  });

  test('Ctrl-C (SIGINT) stops and removes the sandbox while the shell still waits for input', async () => {
    const child = spawn(process.execPath, [join(repo, 'src/cli/main.ts'), 'run', 'host', '--memory', '64m', '--', 'sh', '-c', 'echo ready; sleep 3600'], { stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    await new Promise<void>((resolve) => child.stdout.setEncoding('utf8').on('data', (c: string) => {
      stdout += c;
      if (stdout.includes('ready')) resolve();
    }));
    expect(leftoversOf(child.pid!).runtimes.length).toBeGreaterThan(0); // the check below can see a live one
    const started = Date.now();
    child.kill('SIGINT');
    const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
    expect(code).toBe(130);
    // It ends: a generous bound (the sandbox's command would run for an hour), not a measure of speed.
    expect(Date.now() - started).toBeLessThan(30_000);
    expect(leftoversOf(child.pid!)).toEqual(nothing);
  });

  test('a command the sandbox does not have exits 127; a bad option is the runtime\'s error; no image is a usage error', () => {
    expect(cli(['run', 'host', '--', 'no-such-command-here']).status).toBe(127);
    const bad = cli(['run', 'host', '--cpus', '0']);
    expect(bad.status).toBe(1);
    expect(bad.stderr).toMatch(/cpus: 0 must be a number above 0.*\[INVALID_OPTIONS\]/);
    const usage = cli(['run']);
    expect(usage.status).toBe(2);
    expect(usage.stderr).toMatch(/which image/);
  });

  test.runIf(rootlessUserReady)('as an unprivileged user: a shell mapped to root inside; --memory is the runtime\'s CGROUP error', () => {
    const user = unprivilegedUser();
    const r = cliAsUser(user, ['run', 'host', '--', 'sh', '-c', 'id -u; cat /proc/self/uid_map']);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toMatch(new RegExp(`^0\\n\\s*0\\s+${user.uid}\\s+1\\n`));
    const limited = cliAsUser(user, ['run', 'host', '--memory', '64m', '--', 'true']);
    expect(limited.status).toBe(1);
    expect(limited.stderr).toMatch(/limits cannot be enforced[\s\S]*fix: .*\[CGROUP_DELEGATION_MISSING\]/);
  });

  describe('readiness, like the environment', () => {
    beforeAll(() => ensureImages(['redis', 'busybox']), 600_000);

    test('the command starts once the ports the image exposes listen: redis-cli ping always gets PONG', async () => {
      // Four at a time, 12 in all (without the wait, 3 of 37 were refused: redis-server was not listening yet).
      const ping = () => new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => {
        const child = spawn(process.execPath, [join(repo, 'src/cli/main.ts'), 'run', imagePath('redis'), '--', 'redis-cli', 'ping'], { env: { ...process.env, NO_COLOR: '1' } });
        let stdout = '', stderr = '';
        child.stdout.on('data', (c: Buffer) => { stdout += c; });
        child.stderr.on('data', (c: Buffer) => { stderr += c; });
        child.on('close', (code) => resolve({ code, stdout, stderr }));
      });
      for (let round = 0; round < 3; round++) {
        for (const r of await Promise.all([ping(), ping(), ping(), ping()])) {
          expect(r.stdout.trim(), r.stderr).toBe('PONG');
          expect(r.code).toBe(0);
          expect(r.stderr).toMatch(/waiting for port 6379 \(up to 60 s\)/);
        }
      }
    });

    test('--wait-log and --timeout: a line that never comes is a WAIT_TIMEOUT with the last output; --no-wait does not wait', () => {
      const r = cli(['run', imagePath('redis'), '--wait-log', '/never printed/', '--timeout', '800', '--', 'redis-cli', 'ping']);
      expect(r.status).toBe(1);
      expect(r.stderr).toMatch(/timed out after 800 ms waiting for log line \/never printed\/[\s\S]*Ready to accept connections[\s\S]*\[WAIT_TIMEOUT\]/);
      const now = cli(['run', imagePath('redis'), '--no-wait', '--', 'true']);
      expect(now.status, now.stderr).toBe(0);
      expect(now.stderr).not.toMatch(/waiting for/);
      const log = cli(['run', imagePath('redis'), '--wait-log', 'Ready to accept', '--', 'redis-cli', 'ping']);
      expect(log.stdout.trim(), log.stderr).toBe('PONG');
    });

    test('an OOM kill is reported in words', () => {
      const r = cli(['run', 'host', '--memory', '32m', '--', 'tail', '/dev/zero']);
      expect(r.status).toBe(137);
      expect(r.stderr).toMatch(/out of memory: the kernel killed a process in the sandbox for exceeding its memory limit of 32 MiB \(the command, which exited with 137 = killed\); raise it with --memory/);
    });
  });

  test('an image directory this user may not read is "permission denied", not "not found"', () => {
    ensureImages(['busybox']);
    const user = unprivilegedUser();
    const dir = mkdtempSync(join(tmpdir(), 'vtc-private-image-'));
    try {
      chmodSync(dir, 0o755);
      cpSync(imagePath('busybox'), join(dir, 'image'), { recursive: true });
      for (const [parent, image, denied] of [[0o755, 0o700, join(dir, 'image')], [0o700, 0o755, join(dir, 'image')]] as const) {
        chmodSync(dir, parent);
        chmodSync(join(dir, 'image'), image);
        const r = cliAsUser(user, ['run', join(dir, 'image'), '--', 'true']);
        expect(r.status).toBe(1);
        expect(r.stderr).toMatch(new RegExp(`permission denied reading ${denied} \\(as uid ${user.uid}\\)[\\s\\S]*\\[IMAGE_PERMISSION_DENIED\\]`));
        expect(r.stderr).not.toMatch(/not found/);
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('an unsupported Node', () => {
  test('versions below 22.12 are refused, 22.12 and later accepted', () => {
    expect(['v20.20.2', 'v22.11.0', 'v18.0.0'].map((v) => isSupportedNode(v))).toEqual([false, false, false]);
    expect(['v22.12.0', 'v22.13.1', 'v23.0.0', 'v24.21.0'].map((v) => isSupportedNode(v))).toEqual([true, true, true, true]);
  });

  // The system's Node, when it is an old one (Debian 12's is 18; this machine's 20).
  const system = spawnSync('/usr/bin/node', ['--version'], { encoding: 'utf8' }).stdout?.trim();
  test.runIf(system && !isSupportedNode(system))(`the built CLI on the system's Node (${system}): a clear error, and doctor says so`, () => {
    const main = join(repo, 'dist', 'cli', 'main.js');
    const r = spawnSync('/usr/bin/node', [main, 'run', 'host', '--', 'true'], { encoding: 'utf8', env: { ...process.env, NO_COLOR: '1' } });
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/needs Node 22\.12\.0 or newer; this is Node \d+\.\d+\.\d+ \(\/usr\/bin\/node\)[\s\S]*\[NODE_VERSION_UNSUPPORTED\]/);
    const doctor = spawnSync('/usr/bin/node', [main, 'doctor'], { encoding: 'utf8', env: { ...process.env, NO_COLOR: '1' } });
    expect(doctor.status).toBe(1);
    expect(doctor.stdout).toMatch(/✗ Node: vitest-environment-container needs Node 22\.12\.0 or newer/);
  });
});
