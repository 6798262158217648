// Without cgroup delegation an unprivileged user cannot have limits: asking
// for them must fail clearly (never run unlimited), while a sandbox without
// limits still starts. Runs in the rootless lane (rootless.test.ts).
import { describe, expect, test } from 'vitest';
import { startContainer, withContainer } from '../../src/runtime/index.ts';
import { canLimit } from '../helpers/host.ts';

describe.runIf(!canLimit())('rootless without cgroup delegation', () => {
  test('a memory limit is a HostCapabilityError naming the fix', async () => {
    await expect(startContainer({ memory: '64m' })).rejects.toMatchObject({
      code: expect.stringMatching(/^CGROUP/),
      message: expect.stringMatching(/limits cannot be enforced[\s\S]*fix:/),
    });
  });

  test('a sandbox without limits runs, mapped to root inside, with subordinate ids when the host grants them', async () => {
    await withContainer({}, async (c) => {
      const r = await c.exec(['sh', '-c', 'id -u; cat /proc/self/uid_map']);
      const [uid, ...map] = r.stdout.trim().split('\n');
      expect(uid).toBe('0');
      expect(map[0]).toMatch(new RegExp(`^\\s*0\\s+${process.getuid!()}\\s+1$`));
      await expect(c.stats()).rejects.toMatchObject({ code: 'NO_CGROUP' });
    });
  });
});
