// The run root holds the bundles (config.json) and the spawner's socket: it must be ours alone.
import { chmodSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect, test } from 'vitest';
import { ensureRunRoot } from '../../src/runtime/bundle.ts';

test('a run root open to other users is refused, not used', () => {
  const parent = mkdtempSync(join(tmpdir(), 'vtc-runroot-'));
  try {
    const shared = join(parent, 'shared');
    ensureRunRoot(join(parent, 'private')); // made here: fine
    chmodSync(parent, 0o755);
    rmSync(shared, { force: true, recursive: true });
    mkdirSync(shared, { mode: 0o777 });
    chmodSync(shared, 0o777); // as another user's pre-made directory would be
    expect(() => ensureRunRoot(shared)).toThrow(expect.objectContaining({ code: 'RUN_DIRECTORY_UNSAFE' }));
  } finally {
    rmSync(parent, { recursive: true, force: true });
  }
});
