// Credentials as docker login and podman login keep them, against real
// registries: htpasswd Basic auth, and token auth whose issuer is a small
// server run here (the registry trusts its signing certificate). Plus TLS:
// an unknown CA is a typed error; the CA from a certs.d directory, or listing
// the registry as insecure, makes it work.
import { chmodSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { resolveImage } from '../../src/image/index.ts';
import { forgetRegistryAuth } from '../../src/image/source/registry/client.ts';
import { forgetCredentials } from '../../src/image/source/registry/credentials.ts';
import { busyboxRootfs, tarOf, tempDir } from './helpers/host.ts';
import { writeImage } from './helpers/oci-builder.ts';
import { haveRegistryTools, push, selfSignedCert, startRegistry, startTokenIssuer, type Registry, type TokenIssuer } from './helpers/registry.ts';

const AUTH_VARS = ['DOCKER_CONFIG', 'REGISTRY_AUTH_FILE', 'XDG_RUNTIME_DIR', 'XDG_CONFIG_HOME', 'HOME', 'PATH'] as const;
const saved = Object.fromEntries(AUTH_VARS.map((k) => [k, process.env[k]]));

/** Credentials only from files this test writes: an empty HOME, no XDG dirs. */
function authEnv(vars: Partial<Record<(typeof AUTH_VARS)[number], string>>): void {
  process.env.HOME = tempDir('home');
  for (const k of ['DOCKER_CONFIG', 'REGISTRY_AUTH_FILE', 'XDG_RUNTIME_DIR', 'XDG_CONFIG_HOME'] as const) delete process.env[k];
  Object.assign(process.env, vars);
  forgetCredentials();
  forgetRegistryAuth();
}

function dockerConfig(content: object): string {
  const dir = tempDir('docker-config');
  writeFileSync(`${dir}/config.json`, JSON.stringify(content));
  return dir;
}

const basic = (user: string, password: string): string => Buffer.from(`${user}:${password}`).toString('base64');

describe.runIf(haveRegistryTools)('registry credentials', () => {
  let image: string;
  const pull = (ref: string, extra: object = {}) => resolveImage(ref, { cacheDir: tempDir('cache'), progress: false, ...extra });

  beforeAll(() => {
    const root = tempDir('rootfs');
    busyboxRootfs(root);
    image = tempDir('image');
    writeImage(image, [tarOf(root)]);
  });
  afterEach(() => {
    for (const [k, v] of Object.entries(saved)) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
    forgetCredentials();
    forgetRegistryAuth();
  });

  describe('htpasswd (Basic)', () => {
    let registry: Registry;
    beforeAll(async () => {
      registry = await startRegistry({ htpasswd: { alice: 'wonderland' } });
      await push(`oci:${image}`, `${registry.host}/team/app:1`, { creds: 'alice:wonderland' });
    });

    it('uses the auths entry of $DOCKER_CONFIG/config.json', async () => {
      authEnv({ DOCKER_CONFIG: dockerConfig({ auths: { [registry.host]: { auth: basic('alice', 'wonderland') } } }) });
      expect((await pull(`${registry.host}/team/app:1`)).lowerDirs).toHaveLength(1);
    });

    it('a wrong password is unauthorized, naming the file and entry it came from', async () => {
      const dir = dockerConfig({ auths: { [`https://${registry.host}`]: { auth: basic('alice', 'looking-glass') } } });
      authEnv({ DOCKER_CONFIG: dir });
      const err = await pull(`${registry.host}/team/app:1`).catch((e: unknown) => e);
      expect(err).toMatchObject({ code: 'REGISTRY_UNAUTHORIZED', name: 'RegistryError' });
      expect((err as Error).message).toContain(`user "alice" from ${dir}/config.json (auths "https://${registry.host}")`);
      expect((err as { fix: string }).fix).toContain(`docker login ${registry.host}`);
    });

    it('no credentials at all: unauthorized, listing where it looked', async () => {
      authEnv({});
      const err = await pull(`${registry.host}/team/app:1`).catch((e: unknown) => e);
      expect(err).toMatchObject({ code: 'REGISTRY_UNAUTHORIZED' });
      expect((err as Error).message).toMatch(/anonymous pull of team\/app; no credentials for 127\.0\.0\.1:\d+ \(looked in .*containers\/auth\.json, .*\.docker\/config\.json\)/);
    });

    it('podman\'s $REGISTRY_AUTH_FILE, and ${XDG_RUNTIME_DIR}/containers/auth.json', async () => {
      const file = `${tempDir('podman')}/auth.json`;
      writeFileSync(file, JSON.stringify({ auths: { [registry.host]: { auth: basic('alice', 'wonderland') } } }));
      authEnv({ REGISTRY_AUTH_FILE: file });
      expect((await pull(`${registry.host}/team/app:1`)).lowerDirs).toHaveLength(1);

      const runtime = tempDir('xdg-runtime');
      mkdirSync(`${runtime}/containers`);
      writeFileSync(`${runtime}/containers/auth.json`, readFileSync(file));
      authEnv({ XDG_RUNTIME_DIR: runtime });
      expect((await pull(`${registry.host}/team/app:1`)).lowerDirs).toHaveLength(1);
    });

    it('credHelpers and credsStore run docker-credential-* programs with the registry on stdin', async () => {
      const bin = tempDir('bin');
      const seen = `${bin}/asked`;
      // A credential helper as Docker defines them: `get`, the server URL on stdin, JSON on stdout.
      const helper = (name: string, password: string): void => {
        writeFileSync(`${bin}/docker-credential-${name}`, `#!/bin/sh\n[ "$1" = get ] || exit 2\nread server\necho "${name} $server" >> ${seen}\n`
          + `[ "$server" = "${registry.host}" ] || { echo "credentials not found in native keychain"; exit 1; }\n`
          + `echo '{"ServerURL":"'$server'","Username":"alice","Secret":"${password}"}'\n`);
        chmodSync(`${bin}/docker-credential-${name}`, 0o755);
      };
      helper('vtc-helper', 'wonderland');
      helper('vtc-store', 'wonderland');
      authEnv({ DOCKER_CONFIG: dockerConfig({ credHelpers: { [registry.host]: 'vtc-helper' } }), PATH: `${bin}:${saved.PATH}` });
      expect((await pull(`${registry.host}/team/app:1`)).lowerDirs).toHaveLength(1);
      authEnv({ DOCKER_CONFIG: dockerConfig({ auths: { [registry.host]: {} }, credsStore: 'vtc-store' }), PATH: `${bin}:${saved.PATH}` });
      expect((await pull(`${registry.host}/team/app:1`)).lowerDirs).toHaveLength(1);
      expect(readFileSync(seen, 'utf8').trim().split('\n')).toEqual([`vtc-helper ${registry.host}`, `vtc-store ${registry.host}`]);

      helper('vtc-helper', 'wrong');
      authEnv({ DOCKER_CONFIG: dockerConfig({ credHelpers: { [registry.host]: 'vtc-helper' } }), PATH: `${bin}:${saved.PATH}` });
      await expect(pull(`${registry.host}/team/app:1`)).rejects.toMatchObject({
        code: 'REGISTRY_UNAUTHORIZED', message: expect.stringContaining('credHelpers: docker-credential-vtc-helper'),
      });
      authEnv({ DOCKER_CONFIG: dockerConfig({ credHelpers: { [registry.host]: 'not-installed' } }) });
      await expect(pull(`${registry.host}/team/app:1`)).rejects.toMatchObject({
        code: 'REGISTRY_CREDENTIAL_HELPER_FAILED', message: expect.stringContaining('docker-credential-not-installed'),
      });
    });
  });

  describe('token auth (Bearer)', () => {
    let registry: Registry;
    let issuer: TokenIssuer;
    beforeAll(async () => {
      issuer = await startTokenIssuer({ bob: 'builder' });
      registry = await startRegistry({ token: issuer });
      await push(`oci:${image}`, `${registry.host}/public/app:1`, { creds: 'bob:builder' });
      await push(`oci:${image}`, `${registry.host}/private/app:1`, { creds: 'bob:builder' });
    });

    it('an anonymous token for a public repository, as Docker Hub and GHCR hand them out', async () => {
      authEnv({});
      const asked = issuer.requests.length;
      expect((await pull(`${registry.host}/public/app:1`)).lowerDirs).toHaveLength(1);
      expect(issuer.requests.slice(asked)).toEqual([{ scope: ['repository:public/app:pull'], user: undefined, granted: true }]);
    });

    it('a token for the account in the credentials; without them, unauthorized', async () => {
      authEnv({ DOCKER_CONFIG: dockerConfig({ auths: { [registry.host]: { username: 'bob', password: 'builder' } } }) });
      const asked = issuer.requests.length;
      expect((await pull(`${registry.host}/private/app:1`)).lowerDirs).toHaveLength(1);
      expect(issuer.requests.slice(asked)).toEqual([{ scope: ['repository:private/app:pull'], user: 'bob', granted: true }]);

      // docker login against an OAuth2 registry keeps an identity token: it is POSTed as a refresh token.
      authEnv({ DOCKER_CONFIG: dockerConfig({ auths: { [registry.host]: { identitytoken: 'refresh-bob' } } }) });
      expect((await pull(`${registry.host}/private/app:1`)).lowerDirs).toHaveLength(1);
      expect(issuer.requests.at(-1)).toEqual({ scope: ['repository:private/app:pull'], user: 'bob', granted: true });

      authEnv({});
      await expect(pull(`${registry.host}/private/app:1`)).rejects.toMatchObject({ code: 'REGISTRY_UNAUTHORIZED' });
      authEnv({ DOCKER_CONFIG: dockerConfig({ auths: { [registry.host]: { auth: basic('bob', 'nope') } } }) });
      await expect(pull(`${registry.host}/private/app:1`)).rejects.toMatchObject({
        code: 'REGISTRY_UNAUTHORIZED', message: expect.stringMatching(/refused the credentials of user "bob" from .*config\.json/),
      });
    });
  });

  describe('TLS', () => {
    let registry: Registry;
    let certs: string;
    beforeAll(async () => {
      certs = tempDir('certs');
      registry = await startRegistry({ tls: selfSignedCert(certs, 'registry') });
      await push(`oci:${image}`, `${registry.host}/tls/app:1`);
    });

    it('a certificate no CA vouches for is a TLS error; its CA in a certs.d directory, or "insecure", makes it work', async () => {
      authEnv({});
      const err = await pull(`${registry.host}/tls/app:1`, { registries: {} }).catch((e: unknown) => e);
      expect(err).toMatchObject({ code: 'REGISTRY_TLS', fix: expect.stringContaining('certs.d') });
      const certsDir = tempDir('certs.d');
      mkdirSync(`${certsDir}/${registry.host}`);
      writeFileSync(`${certsDir}/${registry.host}/ca.crt`, readFileSync(`${certs}/registry.crt`));
      expect((await pull(`${registry.host}/tls/app:1`, { registries: { certsDirs: [certsDir] } })).lowerDirs).toHaveLength(1);
      expect((await pull(`${registry.host}/tls/app:1`, { registries: { insecure: [registry.host] } })).lowerDirs).toHaveLength(1);
    });

    it('connection refused is its own error', async () => {
      await expect(pull('127.0.0.1:9/nothing/here:1')).rejects.toMatchObject({ code: 'REGISTRY_UNREACHABLE', message: expect.stringContaining('ECONNREFUSED') });
    });
  });
});
