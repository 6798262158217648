// Real registries for the pull tests: Debian's docker-registry (distribution 2.8)
// started on a free loopback port from a config written here (filesystem storage
// in a temp dir; optionally htpasswd basic auth, token auth with a token issuer
// run here, or TLS), images pushed into it with skopeo, and its access log read
// to count what was fetched. Plus a proxy that counts or breaks requests.
import { spawn } from 'node:child_process';
import { createHash, createPrivateKey, randomUUID, sign, X509Certificate } from 'node:crypto';
import { once } from 'node:events';
import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { execa } from 'execa';
import { afterAll } from 'vitest';
import { freePort, launchRegistry, stopper } from '../../helpers/registry-process.ts';
import { hasTool, run, tempDir } from './host.ts';

export const haveRegistryTools = hasTool('docker-registry') && hasTool('skopeo') && hasTool('openssl') && hasTool('htpasswd');

const running: (() => Promise<void>)[] = [];
afterAll(async () => {
  for (const stop of running.splice(0).reverse()) await stop();
});

export { freePort };

export interface Registry {
  /** 127.0.0.1:PORT */
  host: string;
  /** the registry's storage root */
  storage: string;
  /** everything the registry printed so far (its access log among it) */
  log(): string;
  /** GET requests for blobs (by digest, or all) that got data (200 or 206) */
  blobGets(digest?: string): number;
  /** GET requests for manifests, by tag or digest (or all) */
  manifestGets(reference?: string): number;
  /** the blob's file in the registry's storage */
  blobFile(digest: string): string;
  stop(): Promise<void>;
}

export interface RegistryOptions {
  /** users for htpasswd basic auth */
  htpasswd?: Record<string, string>;
  /** token auth through this issuer */
  token?: TokenIssuer;
  /** serve HTTPS with this certificate and key */
  tls?: { cert: string; key: string };
}

export async function startRegistry(options: RegistryOptions = {}): Promise<Registry> {
  const dir = tempDir('registry');
  let auth: string | undefined;
  if (options.htpasswd) {
    const file = `${dir}/htpasswd`;
    writeFileSync(file, Object.entries(options.htpasswd).map(([u, p]) => run('htpasswd', ['-Bbn', u, p]).trim()).join('\n') + '\n');
    auth = `auth: { htpasswd: { realm: vtc-test, path: ${file} } }`;
  }
  if (options.token) {
    auth = `auth: { token: { realm: "${options.token.realm}", service: ${options.token.service}, issuer: ${options.token.issuer}, rootcertbundle: ${options.token.certFile} } }`;
  }
  const registry = await launchRegistry(dir, { auth, tls: options.tls });
  running.push(registry.stop);
  const accessLines = (): string[] => registry.log().split('\n').filter((l) => /^127\.0\.0\.1 - /.test(l));
  return {
    ...registry,
    blobGets: (digest) => accessLines().filter((l) => new RegExp(`"GET /v2/\\S+/blobs/${digest ?? 'sha256:'}\\S* HTTP/1\\.1" 20[06]`).test(l)).length,
    manifestGets: (reference) => accessLines().filter((l) => new RegExp(`"GET /v2/\\S+/manifests/${reference ?? ''}\\S* HTTP/1\\.1"`).test(l)).length,
    blobFile: (digest) => `${registry.storage}/docker/registry/v2/blobs/sha256/${digest.slice(7, 9)}/${digest.slice(7)}/data`,
  };
}

/**
 * skopeo copy SRC docker://DEST (plain HTTP or unverified TLS: the test registries are on loopback).
 * Asynchronous: a token issuer skopeo must talk to runs in this very process.
 */
export async function push(src: string, dest: string, opts: { creds?: string; all?: boolean } = {}): Promise<void> {
  await execa('skopeo', ['copy', '-q', '--dest-tls-verify=false', ...(opts.creds ? ['--dest-creds', opts.creds] : []), ...(opts.all ? ['--all'] : []), src, `docker://${dest}`]);
}

// ---------- token auth ----------

export interface TokenIssuer {
  realm: string;
  service: string;
  issuer: string;
  certFile: string;
  /** every token request: the scope asked for, the user (undefined: anonymous), what was granted */
  requests: { scope: string[]; user?: string; granted: boolean }[];
}

/** A self-signed certificate and key (PEM files) for 127.0.0.1. */
export function selfSignedCert(dir: string, name: string): { cert: string; key: string } {
  const cert = `${dir}/${name}.crt`, key = `${dir}/${name}.key`;
  run('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '2', '-subj', `/CN=${name}`,
    '-addext', 'subjectAltName=IP:127.0.0.1', '-keyout', key, '-out', cert]);
  return { cert, key };
}

/**
 * The token service a registry's `auth.token` points at: signs RS256 JWTs with a key
 * whose certificate is the registry's rootcertbundle (sent in the x5c header).
 * `users` may pull and push anything; anonymous callers may pull repositories under public/.
 */
export async function startTokenIssuer(users: Record<string, string>): Promise<TokenIssuer> {
  const dir = tempDir('token');
  const { cert, key } = selfSignedCert(dir, 'token-signer');
  const privateKey = createPrivateKey(readFileSync(key));
  const x5c = [new X509Certificate(readFileSync(cert)).raw.toString('base64')];
  const port = await freePort();
  const issuer: TokenIssuer = { realm: `http://127.0.0.1:${port}/token`, service: 'vtc-test', issuer: 'vtc-test-issuer', certFile: cert, requests: [] };
  const b64 = (v: object | Buffer): string => (Buffer.isBuffer(v) ? v : Buffer.from(JSON.stringify(v))).toString('base64url');
  const server = http.createServer(async (req, res) => {
    const url = new URL(req.url ?? '/', 'http://x');
    let scopes = url.searchParams.getAll('scope');
    const basic = /^Basic (.+)$/.exec(req.headers.authorization ?? '')?.[1];
    let [user, password] = basic ? Buffer.from(basic, 'base64').toString().split(':') : [];
    if (req.method === 'POST') {
      // The OAuth2 form docker uses with an identity token: refresh_token "refresh-USER" stands for USER.
      let body = '';
      for await (const chunk of req) body += chunk;
      const form = new URLSearchParams(body);
      scopes = form.getAll('scope');
      user = form.get('grant_type') === 'refresh_token' ? form.get('refresh_token')?.replace(/^refresh-/, '') : undefined;
      password = user !== undefined ? users[user] : undefined;
      if (user !== undefined && password === undefined) user = `unknown refresh token`;
    }
    if (user !== undefined && users[user] !== password) {
      issuer.requests.push({ scope: scopes, user, granted: false });
      res.writeHead(401, { 'content-type': 'application/json' }).end('{"details":"wrong user name or password"}');
      return;
    }
    const access = scopes.map((s) => {
      const [type, name, actions] = s.split(':');
      const allowed = (actions ?? '').split(',').filter((a) => user !== undefined || (a === 'pull' && name!.startsWith('public/')));
      return { type, name, actions: allowed };
    });
    issuer.requests.push({ scope: scopes, user, granted: access.every((a) => a.actions.length) });
    const now = Math.floor(Date.now() / 1000);
    const header = b64({ typ: 'JWT', alg: 'RS256', x5c });
    const claims = b64({ iss: issuer.issuer, sub: user ?? '', aud: issuer.service, exp: now + 300, nbf: now - 10, iat: now, jti: randomUUID(), access });
    const signature = sign('sha256', Buffer.from(`${header}.${claims}`), privateKey).toString('base64url');
    const token = `${header}.${claims}.${signature}`;
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ token, access_token: token, expires_in: 300 }));
  });
  server.listen(port, '127.0.0.1');
  await once(server, 'listening');
  running.push(async () => {
    server.closeAllConnections();
    server.close();
  });
  return issuer;
}

// ---------- a proxy that counts and breaks things ----------

export type ProxyAction =
  | { pass: true }
  /** answer this instead of the registry */
  | { status: number; headers?: Record<string, string>; body?: string }
  /** forward, but close the connection after this many body bytes */
  | { cutAfter: number };

export interface Proxy {
  host: string;
  /** method, path and Range header of every request seen */
  seen: { method: string; path: string; range?: string }[];
}

export async function startProxy(target: string, decide: (req: http.IncomingMessage, index: number) => ProxyAction): Promise<Proxy> {
  const seen: Proxy['seen'] = [];
  const server = http.createServer((req, res) => {
    const index = seen.push({ method: req.method!, path: req.url!, range: req.headers.range }) - 1;
    const action = decide(req, index);
    if ('status' in action) {
      res.writeHead(action.status, action.headers).end(action.body ?? '');
      return;
    }
    const upstream = http.request(`http://${target}${req.url}`, { method: req.method, headers: { ...req.headers, host: target } }, (up) => {
      res.writeHead(up.statusCode!, up.headers);
      if (!('cutAfter' in action)) {
        up.pipe(res);
        return;
      }
      let sent = 0;
      up.on('data', (chunk: Buffer) => {
        if (sent >= action.cutAfter) return;
        const part = chunk.subarray(0, action.cutAfter - sent);
        sent += part.length;
        res.write(part);
        if (sent >= action.cutAfter) {
          up.destroy();
          res.socket?.destroy(); // mid-body: the client sees the connection break
        }
      });
    });
    upstream.on('error', () => res.destroy());
    req.pipe(upstream);
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  running.push(async () => {
    server.closeAllConnections();
    server.close();
  });
  return { host: `127.0.0.1:${(server.address() as AddressInfo).port}`, seen };
}

export const digestOf = (b: Buffer | string): string => `sha256:${createHash('sha256').update(b).digest('hex')}`;

// ---------- podman's Docker-compatible API as the daemon ----------

export const havePodman = hasTool('podman') && hasTool('skopeo');

export interface Daemon {
  /** unix:///…/podman.sock, for DOCKER_HOST */
  url: string;
  /** loads an OCI layout (oci:DIR[:TAG]) into the daemon's store under NAME:TAG */
  load(src: string, name: string): Promise<void>;
  /** API requests the service logged, e.g. 'GET /images/x/get' */
  requests(pattern: RegExp): number;
  stop(): Promise<void>;
}

/** `podman system service --time=0 unix://…` with storage, run state and temp files in a temp dir of its own. */
export async function startPodman(): Promise<Daemon> {
  const dir = tempDir('podman');
  const global = ['--root', `${dir}/storage`, '--runroot', `${dir}/run`, '--tmpdir', `${dir}/tmp`, '--storage-driver', 'vfs',
    '--cgroup-manager', 'cgroupfs', '--events-backend', 'file'];
  const socket = `${dir}/podman.sock`;
  const child = spawn('podman', [...global, '--log-level=info', 'system', 'service', '--time=0', `unix://${socket}`], {
    stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, TMPDIR: `${dir}/tmp` },
  });
  let output = '';
  child.stdout!.setEncoding('utf8').on('data', (d: string) => (output += d));
  child.stderr!.setEncoding('utf8').on('data', (d: string) => (output += d));
  const stop = stopper(child);
  running.push(stop);
  for (let i = 0; i < 200 && !existsSync(socket); i++) {
    if (child.exitCode !== null) throw new Error(`podman system service exited with ${child.exitCode}:\n${output}`);
    await sleep(50);
  }
  return {
    url: `unix://${socket}`,
    async load(src, name) {
      const tar = `${dir}/load.tar`;
      rmSync(tar, { force: true });
      await execa('skopeo', ['copy', '-q', src, `docker-archive:${tar}:${name}`]);
      await execa('podman', [...global, 'load', '-q', '-i', tar], { env: { ...process.env, TMPDIR: `${dir}/tmp` } });
    },
    requests: (pattern) => output.split('\n').filter((l) => pattern.test(l)).length,
    stop,
  };
}
