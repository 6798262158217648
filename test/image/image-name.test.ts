// How an image string is read: a path, an explicit transport, or a registry
// reference normalised as Docker does. Existing relative paths keep working.
import { mkdirSync, writeFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { classifyImageName } from '../../src/image/index.ts';
import { formatReference, parseRegistryReference } from '../../src/image/source/registry/reference.ts';
import { tempDir } from './helpers/host.ts';

const canonical = (raw: string): string => formatReference(parseRegistryReference(raw));
const DIGEST = `sha256:${'ab'.repeat(32)}`;

describe('image names', () => {
  it('normalises Docker Hub short names, registries with ports, tags and digests', () => {
    expect(canonical('redis:7')).toBe('docker.io/library/redis:7');
    expect(canonical('redis')).toBe('docker.io/library/redis:latest');
    expect(canonical('bitnami/redis:7.2')).toBe('docker.io/bitnami/redis:7.2');
    expect(canonical('index.docker.io/library/redis:7')).toBe('docker.io/library/redis:7');
    expect(canonical('ghcr.io/acme/api:1.4')).toBe('ghcr.io/acme/api:1.4');
    expect(canonical('localhost:5000/app')).toBe('localhost:5000/app:latest');
    expect(canonical(`registry.example:5000/team/app@${DIGEST}`)).toBe(`registry.example:5000/team/app@${DIGEST}`);
    expect(parseRegistryReference(`redis:7@${DIGEST}`)).toMatchObject({ tag: '7', digest: { hex: 'ab'.repeat(32) } });
    for (const bad of ['Redis:7', 'redis:', 'redis@sha256:12', 'a//b', 'redis:-x']) {
      expect(() => parseRegistryReference(bad), bad).toThrow(expect.objectContaining({ code: 'IMAGE_INVALID_REFERENCE' }));
    }
  });

  it('paths stay paths; a bare name is local only when it exists and is an image', () => {
    const cwd = tempDir('cwd');
    mkdirSync(`${cwd}/images/redis`, { recursive: true });
    writeFileSync(`${cwd}/images/redis/index.json`, '{}');
    mkdirSync(`${cwd}/postgres`); // e.g. a folder of migrations, not an image
    writeFileSync(`${cwd}/app.tar`, '');

    expect(classifyImageName('./images/redis', cwd)).toMatchObject({ kind: 'files', ref: { path: `${cwd}/images/redis` } });
    expect(classifyImageName('images/redis', cwd)).toMatchObject({ kind: 'files', ref: { path: `${cwd}/images/redis` } });
    expect(classifyImageName('images/redis:latest', cwd)).toMatchObject({ kind: 'files', ref: { tag: 'latest' } });
    expect(classifyImageName('app.tar', cwd)).toMatchObject({ kind: 'files', ref: { path: `${cwd}/app.tar` } });
    expect(classifyImageName(`${cwd}/images/redis`, cwd)).toMatchObject({ kind: 'files' });

    expect(classifyImageName('redis:7', cwd)).toMatchObject({ kind: 'registry', ref: { registry: 'docker.io', repository: 'library/redis', tag: '7' } });
    expect(classifyImageName('postgres:16', cwd)).toMatchObject({ kind: 'registry', ref: { repository: 'library/postgres' }, shadowedPath: `${cwd}/postgres` });
    expect(classifyImageName('docker://images/redis', cwd)).toMatchObject({ kind: 'registry', ref: { repository: 'images/redis' } });

    expect(classifyImageName('oci:images/redis:latest', cwd)).toMatchObject({ kind: 'files', ref: { path: `${cwd}/images/redis`, tag: 'latest', raw: 'oci:images/redis:latest' } });
    expect(classifyImageName('docker-archive:app.tar', cwd)).toMatchObject({ kind: 'files', ref: { path: `${cwd}/app.tar` } });
    expect(classifyImageName('docker-daemon:my-app:dev', cwd)).toEqual({ kind: 'daemon', name: 'my-app:dev' });

    // Neither an existing path nor a reference: the path's error, as before.
    expect(() => classifyImageName('./Nowhere/Image', cwd)).toThrow(expect.objectContaining({ code: 'IMAGE_NOT_FOUND' }));
    expect(() => classifyImageName('My Images/redis', cwd)).toThrow(expect.objectContaining({ code: 'IMAGE_NOT_FOUND' }));
    expect(() => classifyImageName('oci:missing-dir', cwd)).toThrow(expect.objectContaining({ code: 'IMAGE_NOT_FOUND' }));
  });
});
