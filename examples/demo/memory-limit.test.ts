// A memory hog is stopped at its sandbox's limit; the rest of the suite is untouched.
import { expect, test } from 'vitest';
import { withContainer } from '../../src/index.ts';

test('a hog is OOM-killed at 64 MiB and reported as such', async () => {
  await withContainer({ memory: '64m', cmd: ['sh', '-c', 'head -c 500M /dev/zero | tail'] }, async (c) => {
    const exit = await c.wait();
    expect(exit.oomKilled).toBe(true);
    const s = await c.stats();
    console.log(`[demo] memory-limit.test.ts: peak ${(s.memory.peakBytes / 2 ** 20).toFixed(1)} MiB of 64, oom kills ${s.oomKills}`);
  });
});
