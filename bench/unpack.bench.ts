// Unpack benchmark: one ~50 MB gzip layer (a Debian minbase rootfs made with
// debootstrap, or a slice of the host's /usr when debootstrap cannot run),
// unpacked by `tar -xzf`, by `umoci unpack` and by resolveImage (digests
// verified) in the same run, alternating, on the page-cached blob.
//
//   npx node bench/unpack.bench.ts [--runs N] [--workdir DIR]
//
// Prints a markdown table; bench/README-image.md records the numbers.
import { execFileSync, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { gunzipSync } from 'node:zlib';
import { resolveImage } from '../src/image/index.ts';

const arg = (name: string, fallback: string): string => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? process.argv[i + 1]! : fallback;
};
const runs = Number(arg('runs', '5'));
const work = arg('workdir', '/var/tmp/vtc-unpack-bench');
mkdirSync(work, { recursive: true });

function sh(cmd: string, args: string[], opts: { input?: Buffer } = {}): Buffer {
  return execFileSync(cmd, args, { maxBuffer: 1 << 30, input: opts.input, stdio: ['pipe', 'pipe', 'inherit'] });
}

function have(tool: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${tool}`]).status === 0;
}

/** The source tree: debootstrap minbase once (kept between runs), else host /usr/lib + /usr/share. */
function sourceTree(): { dir: string; what: string } {
  const deb = `${work}/debootstrap-minbase`;
  if (existsSync(`${deb}/.complete`)) return { dir: deb, what: 'Debian bookworm minbase (debootstrap)' };
  if (process.geteuid?.() === 0 && have('debootstrap')) {
    rmSync(deb, { recursive: true, force: true });
    const r = spawnSync('debootstrap', ['--variant=minbase', 'bookworm', deb, 'http://deb.debian.org/debian'], { stdio: 'inherit' });
    if (r.status === 0) {
      rmSync(`${deb}/var/cache/apt/archives`, { recursive: true, force: true }); // .debs debootstrap leaves behind
      writeFileSync(`${deb}/.complete`, '');
      return { dir: deb, what: 'Debian bookworm minbase (debootstrap)' };
    }
  }
  return { dir: '/usr/share', what: 'host /usr/share (debootstrap unavailable)' };
}

function buildImage(src: string): { layout: string; blob: string } {
  const layout = `${work}/layout`;
  const stamp = `${layout}/.source`;
  if (existsSync(stamp) && readFileSync(stamp, 'utf8') === src) return { layout, blob: readFileSync(`${layout}/.blob`, 'utf8') };
  rmSync(layout, { recursive: true, force: true });
  mkdirSync(`${layout}/blobs/sha256`, { recursive: true });
  const tar = sh('tar', ['-C', src, '--numeric-owner', '--exclude=./.complete', '-cf', '-', '.']);
  const gz = sh('gzip', ['-6', '-n'], { input: tar });
  const put = (data: Buffer | string, mediaType: string): { mediaType: string; digest: string; size: number } => {
    const buf = Buffer.isBuffer(data) ? data : Buffer.from(data);
    const hex = createHash('sha256').update(buf).digest('hex');
    writeFileSync(`${layout}/blobs/sha256/${hex}`, buf);
    return { mediaType, digest: `sha256:${hex}`, size: buf.length };
  };
  const layer = put(gz, 'application/vnd.oci.image.layer.v1.tar+gzip');
  const diffId = `sha256:${createHash('sha256').update(tar).digest('hex')}`;
  const config = put(JSON.stringify({ architecture: 'amd64', os: 'linux', config: {}, rootfs: { type: 'layers', diff_ids: [diffId] } }), 'application/vnd.oci.image.config.v1+json');
  const manifest = put(JSON.stringify({ schemaVersion: 2, mediaType: 'application/vnd.oci.image.manifest.v1+json', config, layers: [layer] }), 'application/vnd.oci.image.manifest.v1+json');
  writeFileSync(`${layout}/oci-layout`, '{"imageLayoutVersion":"1.0.0"}');
  writeFileSync(`${layout}/index.json`, JSON.stringify({ schemaVersion: 2, manifests: [{ ...manifest, annotations: { 'org.opencontainers.image.ref.name': 'bench' } }] }));
  const blob = `${layout}/blobs/sha256/${layer.digest.slice(7)}`;
  writeFileSync(`${layout}/.blob`, blob);
  writeFileSync(stamp, src);
  return { layout, blob };
}

async function time(fn: () => Promise<void> | void): Promise<number> {
  const t0 = performance.now();
  await fn();
  return performance.now() - t0;
}

const fresh = (name: string): string => {
  const dir = `${work}/out-${name}`;
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  return dir;
};

const src = sourceTree();
const { layout, blob } = buildImage(src.dir);
const gzSize = statSync(blob).size;
const tarSize = gunzipSync(readFileSync(blob)).length;
readFileSync(blob); // warm the page cache for everyone

const contenders: Record<string, () => Promise<void> | void> = {
  'tar -xzf': () => {
    sh('tar', ['-xzf', blob, '-C', fresh('tar')]);
  },
  'resolveImage (verified)': async () => {
    await resolveImage(`${layout}:bench`, { cacheDir: fresh('ours'), progress: false });
  },
};
if (have('umoci')) {
  contenders['umoci unpack'] = () => {
    const dir = fresh('umoci');
    sh('umoci', ['unpack', ...(process.geteuid?.() === 0 ? [] : ['--rootless']), '--image', `${layout}:bench`, `${dir}/bundle`]);
  };
}

const samples: Record<string, number[]> = Object.fromEntries(Object.keys(contenders).map((k) => [k, []]));
for (let i = 0; i < runs; i++) {
  for (const [name, fn] of Object.entries(contenders)) samples[name]!.push(await time(fn));
}
for (const name of Object.keys(contenders)) rmSync(`${work}/out-${name === 'tar -xzf' ? 'tar' : name.startsWith('umoci') ? 'umoci' : 'ours'}`, { recursive: true, force: true });

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[xs.length >> 1]!;
const tarMs = median(samples['tar -xzf']!);
const ours = median(samples['resolveImage (verified)']!);
console.log(`\nsource: ${src.what}; layer: ${(gzSize / 1e6).toFixed(1)} MB gzip, ${(tarSize / 1e6).toFixed(1)} MB tar; ${runs} runs each, alternating; ${cpus().length} CPUs (${cpus()[0]?.model ?? '?'}); node ${process.version}; running as ${process.geteuid?.() === 0 ? 'root' : 'a user'}\n`);
console.log('| unpacker | median ms | min ms | max ms | vs tar -xzf | resolveImage speed-up |');
console.log('|---|---:|---:|---:|---:|---:|');
for (const [name, xs] of Object.entries(samples)) {
  const m = median(xs);
  console.log(`| ${name} | ${m.toFixed(0)} | ${Math.min(...xs).toFixed(0)} | ${Math.max(...xs).toFixed(0)} | ${(m / tarMs).toFixed(2)}x | ${(m / ours).toFixed(2)}x |`);
}
