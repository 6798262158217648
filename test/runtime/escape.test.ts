// A host directory left open in the process that starts a sandbox (fd without
// close-on-exec) must not be reachable from the sandbox, neither by its own
// processes nor through readFile/writeFile (runc CVE-2024-21626 is this class).
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { expect, test } from 'vitest';

test('a leaked host directory fd is closed in the sandbox, and file access cannot follow /proc magic links out', async () => {
  const hostDir = mkdtempSync(join(tmpdir(), 'vtc-escape-'));
  const marker = `escape-${process.pid}`;
  try {
    // A shell leaves /etc open as fd 200 without close-on-exec, then runs the test program.
    const child = spawn('bash', ['-c', 'exec 200</etc; exec "$@"', 'bash', process.execPath, fileURLToPath(new URL('../fixtures/leaked-fd.ts', import.meta.url)), marker],
      { stdio: ['ignore', 'pipe', 'inherit'], cwd: hostDir });
    let out = '';
    child.stdout!.on('data', (c: Buffer) => { out += c.toString(); });
    await new Promise((resolve) => child.on('close', resolve));
    const r = JSON.parse(out.trim()) as { fds: string[]; listedInside: boolean; inside: string[]; read: string[]; write: string[] };
    expect(r.fds.length).toBeGreaterThan(2);
    expect(r).toMatchObject({ listedInside: false, inside: [], read: [], write: [] });
    expect(existsSync(join('/', marker))).toBe(false);
  } finally {
    rmSync(hostDir, { recursive: true, force: true });
  }
});
