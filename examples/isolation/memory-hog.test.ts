// Runaway allocations, contained: the kernel kills the hog at its sandbox's limit,
// and this file, its other sandboxes, the other files and the machine carry on.
import { spawnSync } from 'node:child_process';
import { expect, test } from 'vitest';
import { startContainer, withContainer } from 'vitest-environment-container';

test('a 1 GiB allocation in a 64 MiB sandbox is OOM-killed there, and only there', async () => {
  await using neighbour = await startContainer({ memory: '64m', cmd: ['sleep', '60'] });
  await withContainer({ memory: '64m', cmd: ['sh', '-c', 'head -c 1G /dev/zero | tail'] }, async (hog) => {
    const exit = await hog.wait();
    expect(exit.oomKilled).toBe(true);
    expect(exit.exitCode).toBe(137); // sh reports its killed pipeline as 128 + SIGKILL
  });
  // A sandbox next to it, with the same limit, is untouched.
  expect(neighbour.running).toBe(true);
  expect((await neighbour.exec(['echo', 'still here'])).stdout).toBe('still here\n');
  expect((await neighbour.stats()).oomKills).toBe(0);
});

test("a hog in this file's own worker is killed at the file's limit (512m), not the machine's", () => {
  // A child process of the test that wants 1 GiB; without the pool's limit it would simply get it.
  const hog = `let h = []; for (let i = 0; i < 64; i++) h.push(Buffer.alloc(16 * 2 ** 20, 1)); console.log('got 1 GiB')`;
  const res = spawnSync('sh', ['-c', 'echo 1000 > /proc/self/oom_score_adj && exec "$0" -e "$1"', process.execPath, hog], { encoding: 'utf8' });
  expect(res.stdout).not.toContain('got 1 GiB');
  expect(res.signal).toBe('SIGKILL');
  // The worker running this test survived, and can still allocate what it needs.
  const ballast = Buffer.alloc(64 * 2 ** 20, 7);
  expect(ballast.at(-1)).toBe(7);
});
