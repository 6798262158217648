// Starting Debian's docker-registry (distribution 2.8) on a free loopback port
// from a config written here, filesystem storage under `dir`. No test-runner
// imports: the tests (test/image/helpers/registry.ts) and bench/pull.bench.ts
// both use it.
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { writeFileSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';

export async function freePort(): Promise<number> {
  const server = http.createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;
  server.close();
  await once(server, 'close');
  return port;
}

export interface RegistryProcess {
  /** 127.0.0.1:PORT */
  host: string;
  storage: string;
  /** everything it printed so far, its access log among it */
  log(): string;
  stop(): Promise<void>;
}

export interface RegistryConfig {
  /** extra top-level config lines (auth) */
  auth?: string;
  tls?: { cert: string; key: string };
}

export async function launchRegistry(dir: string, config: RegistryConfig = {}): Promise<RegistryProcess> {
  const host = `127.0.0.1:${await freePort()}`;
  const lines = [
    'version: 0.1',
    'log: { level: info, accesslog: { disabled: false } }',
    `storage: { filesystem: { rootdirectory: ${dir}/storage }, delete: { enabled: true }, cache: { blobdescriptor: inmemory } }`,
    `http: { addr: "${host}"${config.tls ? `, tls: { certificate: ${config.tls.cert}, key: ${config.tls.key} }` : ''} }`,
    ...(config.auth ? [config.auth] : []),
  ];
  writeFileSync(`${dir}/config.yml`, lines.join('\n') + '\n');
  const child = spawn('docker-registry', ['serve', `${dir}/config.yml`], { stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout!.setEncoding('utf8').on('data', (d: string) => (output += d));
  child.stderr!.setEncoding('utf8').on('data', (d: string) => (output += d));
  const stop = stopper(child);
  try {
    await waitForHttp(`${config.tls ? 'https' : 'http'}://${host}/v2/`, () => output, child);
  } catch (err) {
    await stop();
    throw err;
  }
  return { host, storage: `${dir}/storage`, log: () => output, stop };
}

/** Ends the child by its pid (SIGTERM) and waits for it; once. */
export function stopper(child: ChildProcess): () => Promise<void> {
  let stopped: Promise<void> | undefined;
  return () => (stopped ??= (async () => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    child.kill('SIGTERM');
    await once(child, 'exit');
  })());
}

async function waitForHttp(url: string, output: () => string, child: ChildProcess): Promise<void> {
  const lib = url.startsWith('https') ? https : http;
  for (let i = 0; i < 200; i++) {
    if (child.exitCode !== null) throw new Error(`docker-registry exited with ${child.exitCode}:\n${output()}`);
    const answered = await new Promise<boolean>((resolve) => {
      lib.get(url, { rejectUnauthorized: false }, (res) => {
        res.resume();
        resolve(true);
      }).on('error', () => resolve(false));
    });
    if (answered) return;
    await sleep(50);
  }
  throw new Error(`docker-registry did not answer at ${url}:\n${output()}`);
}
