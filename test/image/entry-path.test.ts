// Entry names: the fast path for short clean names must agree with the general one.
import { describe, expect, it } from 'vitest';
import { normalizeEntryPath } from '../../src/image/unpack/entry-path.ts';

/** The general rule, spelled out: drop empty and "." parts, refuse "..", absolute names and parts over 255 bytes. */
function reference(name: string): string {
  if (name.startsWith('/')) throw new Error('absolute');
  const parts = name.split('/').filter((p) => p !== '' && p !== '.');
  if (parts.includes('..')) throw new Error('dotdot');
  if (parts.some((p) => Buffer.byteLength(p) > 255)) throw new Error('long');
  return parts.join('/');
}

const outcome = (f: () => string): string => {
  try {
    return `ok:${f()}`;
  } catch {
    return 'refused';
  }
};

describe('normalizeEntryPath', () => {
  const names = [
    'a', 'a/', 'a/b/c', './a/b', './a/b/', '././a', 'a//b', 'a/./b', 'a/.', './', '.', '', '/', '/a', '//a', 'a/..', '../a', 'a/../b',
    '..', '..a/b', 'a/..b', '.a/.b/c.', 'a/b//', 'a/.../b', 'usr/lib/x86_64-linux-gnu/libpq.so.5', '.wh..wh..opq', 'dir/.wh.file',
    'é/ü', `${'é'.repeat(40)}/x`, `${'x'.repeat(84)}`, `${'x'.repeat(86)}`, `d/${'€'.repeat(86)}`, `d/${'€'.repeat(85)}`, `d/${'x'.repeat(256)}`,
  ];
  it.each(names)('%j as the general rule says', (name) => {
    expect(outcome(() => normalizeEntryPath(name))).toBe(outcome(() => reference(name)));
  });
});
