// The second of two files that would collide on a shared host: both write /tmp/state and
// expect to find only their own value. Each gets its own sandbox.
import { afterAll, beforeAll, expect, test } from 'vitest';
import { startContainer, type Container } from '../../src/index.ts';

let sandbox: Container;
beforeAll(async () => { sandbox = await startContainer({ memory: '128m', cpus: 1, pids: 64 }); });
afterAll(async () => {
  const s = await sandbox.stats();
  console.log(`[demo] ${import.meta.filename.split('/').pop()}: peak ${(s.memory.peakBytes / 2 ** 20).toFixed(1)} MiB, cpu ${(s.cpu.usageSeconds * 1000).toFixed(0)} ms`);
  await sandbox.stop();
});

test('/tmp/state holds only this file\'s value', async () => {
  expect((await sandbox.exec(['sh', '-c', 'test -e /tmp/state && echo taken || echo free'])).stdout).toBe('free\n');
  await sandbox.exec(['sh', '-c', 'echo second-file > /tmp/state']);
  expect((await sandbox.exec(['cat', '/tmp/state'])).stdout).toBe('second-file\n');
});
