// A staging tree -> a gzip'd layer blob, byte-for-byte reproducible.
//
// GNU tar rather than the `tar` npm package: it already has every knob
// reproducibility needs (--sort=name, --mtime, --numeric-owner, pax headers without
// pids or atimes), handles hard links, device files and long names the way every
// layer consumer expects, and runs as a separate process next to gzip. `gzip -n`
// (no name, no timestamp) for the same reason: its output has been stable across
// versions for decades, unlike a zlib that ships inside whichever Node runs us.
import { createHash, type Hash } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { readdir } from 'node:fs/promises';
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { execa } from 'execa';

export interface LayerBlob {
  /** sha256:<hex> of the gzip'd tar: the blob's name and the manifest's digest. */
  digest: string;
  /** sha256:<hex> of the uncompressed tar: the config's rootfs.diff_ids entry. */
  diffId: string;
  size: number;
}

/** Every file's mtime in the layer: SOURCE_DATE_EPOCH if set, else the epoch. */
export function sourceDateEpoch(): number {
  const value = Number(process.env.SOURCE_DATE_EPOCH ?? 0);
  return Number.isInteger(value) && value >= 0 ? value : 0;
}

function hashing(hash: Hash, count?: { bytes: number }): Transform {
  return new Transform({
    transform(chunk: Buffer, _enc, done) {
      hash.update(chunk);
      if (count) count.bytes += chunk.length;
      done(null, chunk);
    },
  });
}

/** Write `root` as a tar.gz to `file`. Owners are taken from the tree, numerically. */
export async function writeLayer(root: string, file: string): Promise<LayerBlob> {
  // Top-level names sorted by us (tar's --sort only orders what it finds in directories),
  // and given without "./" so entries read "usr/bin/x" as in other images.
  const top = (await readdir(root)).sort();
  const tar = execa('tar', [
    '--create', '--file=-', `--directory=${root}`,
    '--format=posix', '--sort=name', `--mtime=@${sourceDateEpoch()}`, '--numeric-owner',
    '--pax-option=exthdr.name=%d/PaxHeaders/%f,delete=atime,delete=ctime',
    '--no-acls', '--no-xattrs', '--no-selinux',
    '--', ...top,
  ], { buffer: false, stdin: 'ignore', env: { LC_ALL: 'C' } });
  const gzip = execa('gzip', ['-n', '-6', '-c'], { buffer: false });
  const raw = createHash('sha256');
  const packed = createHash('sha256');
  const size = { bytes: 0 };
  await Promise.all([
    pipeline(tar.stdout, hashing(raw), gzip.stdin),
    pipeline(gzip.stdout, hashing(packed, size), createWriteStream(file)),
    tar,
    gzip,
  ]);
  return { digest: `sha256:${packed.digest('hex')}`, diffId: `sha256:${raw.digest('hex')}`, size: size.bytes };
}
