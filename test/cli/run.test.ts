// `run`: commands piped into a real sandbox, its exit code passed through, and
// nothing left behind afterwards (processes, cgroups, bundles), Ctrl-C included.
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { describe, expect, test } from 'vitest';
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

  test('the default command is a shell reading stdin; options reach the sandbox (limits, env, ports, mounts, workdir)', () => {
    const r = cli(['run', 'host', '--memory', '64m', '--pids', '20', '-e', 'GREETING=hi there', '-p', '6379', '-v', `${repo}:/src:ro`, '-w', '/src'], {
      input: 'echo "$GREETING"; pwd; test -f package.json && echo mounted; touch x 2>/dev/null || echo read-only; tail /dev/zero; echo "tail=$?"\n',
    });
    expect(r.status, r.stderr).toBe(0);
    const lines = r.stdout.trim().split('\n');
    expect(lines.slice(0, 4)).toEqual(['hi there', '/src', 'mounted', 'read-only']);
    // tail keeps /dev/zero's endless "line" in memory: the 64m limit ends it (SIGKILL: 128 + 9).
    expect(lines[4]).toBe('tail=137');
    expect(r.stderr).toMatch(/ports: 6379 → 127\.0\.0\.1:\d+/);
    expect(leftoversOf(r.pid!)).toEqual(nothing);
  });

  test('Ctrl-C (SIGINT) stops and removes the sandbox while the shell still waits for input', async () => {
    const child = spawn(process.execPath, [join(repo, 'src/cli/main.ts'), 'run', 'host', '--memory', '64m', '--', 'sh', '-c', 'echo ready; sleep 60'], { stdio: ['pipe', 'pipe', 'pipe'] });
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
    expect(Date.now() - started).toBeLessThan(10_000);
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
});
