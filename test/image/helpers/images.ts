// Images made by third-party tools (umoci, skopeo, GNU tar) from host
// binaries: the realistic inputs the resolver must handle.
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { busyboxRootfs, run } from './host.ts';

export interface ToolImages {
  /** OCI layout made by umoci, tags "base" (1 layer) and "layered" (3 layers) */
  layout: string;
  /** the "layered" image converted by skopeo to a docker-archive */
  dockerArchive: string;
  /** the "layered" image as Docker 25+ saves it: OCI layout + manifest.json in one tar */
  docker25Archive: string;
}

/**
 * base:    busybox rootfs, /etc/hello, /etc/remove-me, /data/{a,b,sub/c}
 * layered: + a umoci repack that deletes /etc/remove-me and /data/sub, rewrites /etc/hello
 *          + a raw layer (GNU tar) whose /data is opaque and holds only /data/fresh
 */
export function buildToolImages(dir: string): ToolImages {
  const layout = `${dir}/oci`;
  const bundle = `${dir}/bundle`;
  const rootfs = `${bundle}/rootfs`;
  run('umoci', ['init', '--layout', layout]);
  run('umoci', ['new', '--image', `${layout}:base`]);
  run('umoci', ['unpack', ...rootlessFlag(), '--image', `${layout}:base`, bundle]);
  busyboxRootfs(rootfs);
  writeFileSync(`${rootfs}/etc/hello`, 'hello from layer 1\n');
  writeFileSync(`${rootfs}/etc/remove-me`, 'doomed\n');
  mkdirSync(`${rootfs}/data/sub`, { recursive: true });
  writeFileSync(`${rootfs}/data/a`, 'a\n');
  writeFileSync(`${rootfs}/data/b`, 'b\n');
  writeFileSync(`${rootfs}/data/sub/c`, 'c\n');
  run('umoci', ['repack', '--image', `${layout}:base`, bundle]);
  run('umoci', ['config', '--image', `${layout}:base`, '--config.env', 'GREETING=hi', '--config.cmd', '/bin/sh',
    '--config.workingdir', '/data', '--config.user', 'app', '--config.exposedports', '6379/tcp', '--config.label', 'org.example=1']);

  run('umoci', ['tag', '--image', `${layout}:base`, 'layered']);
  rmSync(bundle, { recursive: true, force: true });
  run('umoci', ['unpack', ...rootlessFlag(), '--image', `${layout}:layered`, bundle]);
  rmSync(`${rootfs}/etc/remove-me`);
  rmSync(`${rootfs}/data/sub`, { recursive: true });
  writeFileSync(`${rootfs}/etc/hello`, 'hello from layer 2\n');
  run('umoci', ['repack', '--image', `${layout}:layered`, bundle]);

  const stage = `${dir}/layer3`;
  mkdirSync(`${stage}/data`, { recursive: true });
  writeFileSync(`${stage}/data/.wh..wh..opq`, '');
  writeFileSync(`${stage}/data/fresh`, 'fresh\n');
  run('tar', ['-C', stage, '--owner=0', '--group=0', '-cf', `${dir}/layer3.tar`, 'data']);
  run('umoci', ['raw', 'add-layer', '--image', `${layout}:layered`, `${dir}/layer3.tar`]);

  const dockerArchive = `${dir}/layered-docker.tar`;
  run('skopeo', ['copy', '-q', `oci:${layout}:layered`, `docker-archive:${dockerArchive}:example/layered:latest`]);
  return { layout, dockerArchive, docker25Archive: docker25(dir, layout) };
}

function rootlessFlag(): string[] {
  return process.geteuid?.() === 0 ? [] : ['--rootless'];
}

/** Docker 25+ `docker save`: an OCI layout plus the legacy manifest.json pointing into blobs/. */
function docker25(dir: string, layout: string): string {
  const d25 = `${dir}/d25`;
  run('skopeo', ['copy', '-q', `oci:${layout}:layered`, `oci:${d25}`]);
  const index = JSON.parse(readFileSync(`${d25}/index.json`, 'utf8'));
  const desc = index.manifests[0];
  desc.annotations = { 'io.containerd.image.name': 'docker.io/example/layered:latest', 'org.opencontainers.image.ref.name': 'latest' };
  writeFileSync(`${d25}/index.json`, JSON.stringify(index));
  const manifest = JSON.parse(readFileSync(`${d25}/blobs/sha256/${desc.digest.slice(7)}`, 'utf8'));
  const blob = (d: { digest: string }): string => `blobs/sha256/${d.digest.slice(7)}`;
  writeFileSync(`${d25}/manifest.json`, JSON.stringify([{
    Config: blob(manifest.config), RepoTags: ['example/layered:latest'], Layers: manifest.layers.map(blob),
  }]));
  const out = `${dir}/layered-docker25.tar`;
  run('tar', ['-C', d25, '-cf', out, '.']);
  return out;
}
