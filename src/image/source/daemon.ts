// docker-daemon:NAME[:TAG]: an image from the local Docker daemon's store, or
// podman's (its Docker-compatible API), through the Engine API with no CLI:
//   GET /images/NAME/json   the image id (what the name points at now; a local request)
//   GET /images/ID/get      the image as a docker save tar, kept in the cache's tmp/ while it unpacks
// The socket: DOCKER_HOST (unix:///path or tcp://host:port), else
// /var/run/docker.sock, else podman's ($XDG_RUNTIME_DIR/podman/podman.sock,
// /run/podman/podman.sock).
import { createWriteStream, existsSync, mkdirSync, rmSync } from 'node:fs';
import http from 'node:http';
import type { IncomingMessage } from 'node:http';
import { randomBytes } from 'node:crypto';
import { pipeline } from 'node:stream/promises';
import { RegistryError } from '../../errors.ts';
import { tmpDir } from '../cache-layout.ts';
import { loadLegacyPlan, loadPlan } from '../load-plan.ts';
import type { Platform } from '../platform.ts';
import type { Puller } from '../pull.ts';
import { selectManifest } from '../select-manifest.ts';
import { fileContent } from './file-content.ts';
import { readBody } from './registry/http.ts';
import { TarArchiveSource } from './tar-archive.ts';

interface DaemonAddress {
  /** for messages: unix:///var/run/docker.sock */
  url: string;
  socketPath?: string;
  host?: string;
  port?: number;
}

export function daemonAddress(env: NodeJS.ProcessEnv = process.env): DaemonAddress {
  const configured = env.DOCKER_HOST;
  if (configured) {
    if (configured.startsWith('unix://')) return { url: configured, socketPath: configured.slice('unix://'.length) };
    const tcp = /^tcp:\/\/([^:/]+|\[[^\]]+\]):(\d+)\/?$/.exec(configured);
    if (tcp) return { url: configured, host: tcp[1]!.replace(/^\[(.*)\]$/, '$1'), port: Number(tcp[2]) };
    throw new RegistryError('DAEMON_UNREACHABLE', `DOCKER_HOST=${configured} is neither unix:///PATH nor tcp://HOST:PORT`, {
      fix: 'set DOCKER_HOST=unix:///var/run/docker.sock (or podman\'s socket), or unset it',
    });
  }
  const candidates = ['/var/run/docker.sock', env.XDG_RUNTIME_DIR && `${env.XDG_RUNTIME_DIR}/podman/podman.sock`, '/run/podman/podman.sock'].filter(Boolean) as string[];
  const socketPath = candidates.find((p) => existsSync(p)) ?? candidates[0]!;
  return { url: `unix://${socketPath}`, socketPath };
}

function request(address: DaemonAddress, path: string): Promise<IncomingMessage> {
  return new Promise((resolve, reject) => {
    const req = http.request({ socketPath: address.socketPath, host: address.host ?? 'localhost', port: address.port, path, headers: { host: 'docker' } }, resolve);
    req.on('error', (err: NodeJS.ErrnoException) => reject(new RegistryError('DAEMON_UNREACHABLE', `cannot reach the Docker API at ${address.url}: ${err.message}`, {
      cause: err,
      fix: 'start the daemon (systemctl start docker, or podman system service --time=0 unix:///run/podman/podman.sock) or point DOCKER_HOST at its socket; reading the socket may need membership of the docker group',
    })));
    req.end();
  });
}

async function failure(res: IncomingMessage, name: string, address: DaemonAddress, what: string): Promise<RegistryError> {
  const body = (await readBody(res, 8192)).trim();
  let message = body;
  try {
    message = (JSON.parse(body) as { message?: string }).message ?? body;
  } catch { /* plain text */ }
  if (res.statusCode === 404) {
    return new RegistryError('DAEMON_IMAGE_NOT_FOUND', `the daemon at ${address.url} has no image ${name}: ${message}`, {
      fix: `build or pull it there first (docker images / podman images lists what it has), or use ${name} without docker-daemon: to pull from a registry`,
    });
  }
  return new RegistryError('DAEMON_ERROR', `${what} ${name} from the daemon at ${address.url} failed with ${res.statusCode}: ${message}`);
}

export function daemonPuller(name: string, cache: string, platform: Platform, env: NodeJS.ProcessEnv = process.env): Puller {
  const address = daemonAddress(env);
  const reference = `docker-daemon:${name}`;
  return {
    reference,
    from: address.url,
    // The check is a local request: a rebuilt image (same name, new id) is noticed even under pull: 'missing'.
    localCheck: true,
    async current() {
      const res = await request(address, `/images/${encodeURI(name)}/json`);
      if (res.statusCode !== 200) throw await failure(res, name, address, 'inspecting');
      const id = (JSON.parse(await readBody(res)) as { Id?: string }).Id;
      if (!id) throw new RegistryError('DAEMON_ERROR', `the daemon at ${address.url} gave no id for ${name}`);
      return id.startsWith('sha256:') ? id : `sha256:${id}`;
    },
    async open(id) {
      // Exported by id: the tar holds exactly the image inspected, even if the name moves meanwhile.
      const res = await request(address, `/images/${encodeURIComponent(id)}/get`);
      if (res.statusCode !== 200) throw await failure(res, name, address, 'exporting');
      mkdirSync(tmpDir(cache), { recursive: true, mode: 0o700 });
      const file = `${tmpDir(cache)}/daemon.${process.pid}.${randomBytes(4).toString('hex')}.tar`;
      const close = (): void => rmSync(file, { force: true });
      try {
        await pipeline(res, createWriteStream(file, { mode: 0o600 }));
        const files = new TarArchiveSource(file);
        const selected = await selectManifest(files, { raw: reference, path: file }, platform);
        const content = fileContent(files);
        const plan = selected.kind === 'legacy'
          ? () => loadLegacyPlan(files, reference, selected.digest, selected.manifest)
          : () => loadPlan(content, reference, selected);
        return { manifestDigest: selected.digest, content, plan, close };
      } catch (err) {
        close();
        throw err;
      }
    },
  };
}
