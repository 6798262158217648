// The OCI image layout on disk: oci-layout, index.json (an image index with one
// tagged manifest), blobs/sha256/<hex> for the manifest, the config and each layer.
// JSON is written with a fixed key order and no timestamps but the source date, so
// the same layers give the same config, manifest and index digests.
import { createHash } from 'node:crypto';
import { mkdir, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { ImageConfig } from './recipe.ts';
import type { LayerBlob } from './layer.ts';

export const MEDIA = {
  index: 'application/vnd.oci.image.index.v1+json',
  manifest: 'application/vnd.oci.image.manifest.v1+json',
  config: 'application/vnd.oci.image.config.v1+json',
  layer: 'application/vnd.oci.image.layer.v1.tar+gzip',
} as const;

export const DEFAULT_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

export interface Descriptor {
  mediaType: string;
  digest: string;
  size: number;
  annotations?: Record<string, string>;
  platform?: { architecture: string; os: string; variant?: string };
}

export function blobPath(layout: string, digest: string): string {
  return join(layout, 'blobs', ...digest.split(':'));
}

/** Debian's architecture names -> Go's, which OCI uses. */
export function ociPlatform(debArch: string): { architecture: string; os: string; variant?: string } {
  const map: Record<string, { architecture: string; variant?: string }> = {
    amd64: { architecture: 'amd64' },
    arm64: { architecture: 'arm64', variant: 'v8' },
    armhf: { architecture: 'arm', variant: 'v7' },
    i386: { architecture: '386' },
    ppc64el: { architecture: 'ppc64le' },
    s390x: { architecture: 's390x' },
    riscv64: { architecture: 'riscv64' },
  };
  return { os: 'linux', ...(map[debArch] ?? { architecture: debArch }) };
}

async function writeJsonBlob(layout: string, mediaType: string, value: unknown): Promise<Descriptor> {
  const bytes = Buffer.from(JSON.stringify(value));
  const digest = `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
  await writeFile(blobPath(layout, digest), bytes);
  return { mediaType, digest, size: bytes.length };
}

function seconds(value: number | undefined): number | undefined {
  return value === undefined ? undefined : value * 1e9; // Docker's Healthcheck durations are nanoseconds
}

/** The `config` object of the image config, with OCI's (and Docker's) field names. */
export function containerConfig(c: ImageConfig): Record<string, unknown> {
  const env = { PATH: DEFAULT_PATH, ...c.env };
  const set = (list: string[] | undefined) => (list ? Object.fromEntries(list.map((k) => [k, {}])) : undefined);
  const hc = c.healthcheck;
  return {
    User: c.user,
    ExposedPorts: set(c.exposedPorts),
    Env: Object.entries(env).map(([k, v]) => `${k}=${v}`),
    Entrypoint: c.entrypoint,
    Cmd: c.cmd,
    Volumes: set(c.volumes),
    WorkingDir: c.workingDir,
    Labels: c.labels,
    StopSignal: c.stopSignal,
    Healthcheck: hc && {
      Test: hc.test,
      Interval: seconds(hc.intervalSeconds),
      Timeout: seconds(hc.timeoutSeconds),
      StartPeriod: seconds(hc.startPeriodSeconds),
      Retries: hc.retries,
    },
  };
}

export interface LayoutInput {
  platform: { architecture: string; os: string; variant?: string };
  config: ImageConfig;
  layers: (LayerBlob & { file: string; history: string })[];
  tag: string;
  created: string;
}

/** Move the layer files into `layout` (a fresh directory) and write the JSON around them. */
export async function writeLayout(layout: string, input: LayoutInput): Promise<Descriptor> {
  await mkdir(join(layout, 'blobs', 'sha256'), { recursive: true });
  for (const { digest, file } of input.layers) await rename(file, blobPath(layout, digest));
  const config = await writeJsonBlob(layout, MEDIA.config, {
    created: input.created,
    architecture: input.platform.architecture,
    ...(input.platform.variant ? { variant: input.platform.variant } : {}),
    os: input.platform.os,
    config: containerConfig(input.config),
    rootfs: { type: 'layers', diff_ids: input.layers.map((l) => l.diffId) },
    history: input.layers.map((l) => ({ created: input.created, created_by: l.history })),
  });
  const manifest = await writeJsonBlob(layout, MEDIA.manifest, {
    schemaVersion: 2,
    mediaType: MEDIA.manifest,
    config,
    layers: input.layers.map((l) => ({ mediaType: MEDIA.layer, digest: l.digest, size: l.size })),
  });
  const tagged: Descriptor = { ...manifest, platform: input.platform, annotations: { 'org.opencontainers.image.ref.name': input.tag } };
  await writeFile(join(layout, 'oci-layout'), JSON.stringify({ imageLayoutVersion: '1.0.0' }));
  await writeFile(join(layout, 'index.json'), JSON.stringify({ schemaVersion: 2, mediaType: MEDIA.index, manifests: [tagged] }));
  return manifest;
}
