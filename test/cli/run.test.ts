// `run`: commands piped into a real sandbox, its exit code passed through, and
// nothing left behind afterwards (processes, cgroups, bundles), Ctrl-C included.
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { describe, expect, test } from 'vitest';
import { isRoot } from '../helpers/host.ts';
import { cli, cliAsUser, leftoversOf, repo, unprivilegedUser } from './helpers.ts';

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

  test('as an unprivileged user: a shell mapped to root inside; --memory is the runtime\'s CGROUP error', () => {
    const user = unprivilegedUser();
    const r = cliAsUser(user, ['run', 'host', '--', 'sh', '-c', 'id -u; cat /proc/self/uid_map']);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toMatch(new RegExp(`^0\\n\\s*0\\s+${user.uid}\\s+1\\n`));
    const limited = cliAsUser(user, ['run', 'host', '--memory', '64m', '--', 'true']);
    expect(limited.status).toBe(1);
    expect(limited.stderr).toMatch(/limits cannot be enforced[\s\S]*fix: .*\[CGROUP_DELEGATION_MISSING\]/);
  });
});
