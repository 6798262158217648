// Reading one file of an image without mounting it: look it up through the
// lower dirs, top-most first, honouring whiteouts and opaque directories the
// way overlayfs does.
import { lstatSync, readFileSync } from 'node:fs';
import { getXattr } from './syscalls.ts';

export function readLayeredFile(lowerDirs: string[], relPath: string): Buffer | undefined {
  const parts = relPath.split('/').filter(Boolean);
  for (const layer of lowerDirs) {
    const found = lookupInLayer(layer, parts);
    if (found === 'hidden') return undefined;
    if (found !== 'absent') return readFileSync(found);
  }
  return undefined;
}

function lookupInLayer(layer: string, parts: string[]): string | 'absent' | 'hidden' {
  let dir = layer;
  for (let i = 0; i < parts.length; i++) {
    const path = `${dir}/${parts[i]}`;
    const st = lstatSync(path, { throwIfNoEntry: false });
    if (!st) return i > 0 && isOpaque(dir) ? 'hidden' : 'absent';
    if (st.isCharacterDevice() && st.rdev === 0) return 'hidden'; // whiteout
    const last = i === parts.length - 1;
    if (last) return st.isFile() ? path : 'hidden'; // a symlinked /etc/passwd is not followed
    if (!st.isDirectory()) return 'hidden'; // a non-directory hides everything below it
    dir = path;
  }
  return 'absent';
}

function isOpaque(dir: string): boolean {
  return getXattr(dir, 'trusted.overlay.opaque')?.toString() === 'y' || getXattr(dir, 'user.overlay.opaque')?.toString() === 'y';
}
