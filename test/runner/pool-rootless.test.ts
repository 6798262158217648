// containerPool() for an unprivileged user (a laptop without cgroup delegation): each file's worker
// in a sandbox of its own, in the user's own user namespace, and sandboxes started from a worker
// nested in it. Runs in the rootless lane (test/runtime/rootless.test.ts), as that user.
import { expect, test } from 'vitest';
import { descendants, isRoot } from '../helpers/host.ts';
import { runVitest } from '../helpers/run-fixture.ts';

test.runIf(!isRoot)('files that collide on a shared host pass side by side in a rootless pool; a worker starts sandboxes of its own; nothing is left', async () => {
  const r = await runVitest('pool-rootless', ['--maxWorkers=2', '--configLoader', 'native']);
  expect(r.output).toMatch(/Tests\s+4 passed \(4\)/);
  expect(r.code, r.output).toBe(0);
  // The fixtures' background sleepers died with their workers' sandboxes.
  expect(descendants().filter((pid) => pid !== r.pid)).toEqual([]);
}, 120_000);
