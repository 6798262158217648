// `pull`, `images list` and `doctor --image` against a real registry, run as a
// user would run the CLI: plain lines in CI, a live progress line on a terminal.
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { busyboxRootfs, hasTool, tarOf, tempDir } from '../image/helpers/host.ts';
import { writeImage } from '../image/helpers/oci-builder.ts';
import { haveRegistryTools, push, startRegistry, type Registry } from '../image/helpers/registry.ts';
import { cli, repo } from './helpers.ts';

describe.runIf(haveRegistryTools)('pull, images list, doctor --image', () => {
  let registry: Registry;
  let locked: Registry;
  let ref: string;
  beforeAll(async () => {
    const root = tempDir('rootfs');
    busyboxRootfs(root);
    const image = tempDir('image');
    writeImage(image, [tarOf(root), tarOf(tempDir('empty'))]);
    registry = await startRegistry();
    ref = `${registry.host}/cli/app:1`;
    await push(`oci:${image}`, ref);
    locked = await startRegistry({ htpasswd: { ci: 'secret' } });
    await push(`oci:${image}`, `${locked.host}/cli/app:1`, { creds: 'ci:secret' });
  });
  const noCredentials = (): Record<string, string> => ({ HOME: tempDir('home'), DOCKER_CONFIG: tempDir('docker'), REGISTRY_AUTH_FILE: join(tempDir('auth'), 'none.json') });

  it('pull prints a line per layer in CI and the digest; a second pull downloads nothing; images list shows the reference and digest', () => {
    const cacheDir = tempDir('cache');
    const first = cli(['pull', ref, '--cache-dir', cacheDir], { env: { CI: 'true' } });
    expect(first.status, first.stderr).toBe(0);
    expect(first.stderr).toMatch(new RegExp(`pulling ${ref}`));
    expect(first.stderr.match(/layer [0-9a-f]{12} fetched/g)).toHaveLength(2);
    const digest = /pulled (sha256:[0-9a-f]{64}) \(2 layer\(s\)/.exec(first.stdout)?.[1];
    expect(digest, first.stdout).toBeDefined();
    const blobs = registry.blobGets();

    const second = cli(['pull', ref, '--cache-dir', cacheDir], { env: { CI: 'true' } });
    expect(second.stdout).toContain(`up to date, ${digest} (nothing downloaded)`);
    expect(registry.blobGets()).toBe(blobs);

    const list = cli(['images', 'list', '--cache-dir', cacheDir]);
    expect(list.stdout).toMatch(new RegExp(`${ref}\\s+linux/\\w+\\s+${digest}`));
    const json = JSON.parse(cli(['images', 'list', '--cache-dir', cacheDir, '--json']).stdout) as { references: { reference: string; manifestDigest: string; from: string }[] };
    expect(json.references).toEqual([expect.objectContaining({ reference: ref, manifestDigest: digest, from: registry.host })]);

    // A pruned image takes its pulled reference with it: the next use pulls again.
    expect(cli(['images', 'prune', '--all', '--cache-dir', cacheDir]).status).toBe(0);
    expect((JSON.parse(cli(['images', 'list', '--cache-dir', cacheDir, '--json']).stdout) as { references: unknown[] }).references).toEqual([]);
    const again = cli(['pull', ref, '--cache-dir', cacheDir], { env: { CI: 'true' } });
    expect(again.stdout).toContain(`pulled ${digest} (2 layer(s)`);
  });

  it.runIf(hasTool('script'))('on a terminal the progress is one live line with layers, bytes and speed', () => {
    const cacheDir = tempDir('cache');
    const cmd = `${process.execPath} ${join(repo, 'src/cli/main.ts')} pull ${ref} --cache-dir ${cacheDir}`;
    const r = spawnSync('script', ['-qfec', cmd, '/dev/null'], { encoding: 'utf8', env: { ...process.env, CI: '', NO_COLOR: '1' }, timeout: 60_000 });
    expect(r.status, r.stdout).toBe(0);
    expect(r.stdout).toMatch(/\r\x1b\[K.*: 2\/2 layers, [\d.]+ (KiB|MiB) of [\d.]+ (KiB|MiB), [\d.]+ \w+\/s/);
  });

  it('pull failures are typed and leave nothing: unauthorized names where credentials were looked for', () => {
    const cacheDir = tempDir('cache');
    const r = cli(['pull', `${locked.host}/cli/app:1`, '--cache-dir', cacheDir], { env: { CI: 'true', ...noCredentials() } });
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/anonymous pull of cli\/app; no credentials for 127\.0\.0\.1:\d+ \(looked in .*none\.json.*\[REGISTRY_UNAUTHORIZED\]/s);
    expect(cli(['images', 'list', '--cache-dir', cacheDir, '--json']).stdout).toContain('"references": []');
  });

  it('doctor --image checks reachability and credentials of the image\'s registry', () => {
    const cacheDir = tempDir('cache');
    const ok = cli(['doctor', '--json', '--image', ref, '--cache-dir', cacheDir]);
    const checks = (JSON.parse(ok.stdout) as { checks: { id: string; status: string; summary: string; code?: string }[] }).checks;
    expect(checks.find((c) => c.id === 'image-source')).toMatchObject({ status: 'ok', summary: expect.stringMatching(/-> sha256:[0-9a-f]{64} .*anonymous/) });

    const config = tempDir('docker');
    const denied = cli(['doctor', '--json', '--image', `${locked.host}/cli/app:1`, '--cache-dir', cacheDir], { env: { ...noCredentials(), DOCKER_CONFIG: config } });
    const failed = (JSON.parse(denied.stdout) as { checks: { id: string; status: string; code?: string; fix?: string }[] }).checks.find((c) => c.id === 'image-source');
    expect(failed).toMatchObject({ status: 'fail', code: 'REGISTRY_UNAUTHORIZED', fix: expect.stringContaining('docker login') });
    expect(denied.status).toBe(1);
  });
});
