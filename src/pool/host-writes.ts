// The few writes a pool worker must make for real, although its sandbox's writes are
// throwaway: snapshot files (`toMatchSnapshot`, `toMatchFileSnapshot`, `-u`). The worker
// asks over its IPC channel and the pool's main-process side does them, only under the
// project's root (never in node_modules, never through a symlink that leaves it).
// Coverage files go through a bind mount of exactly their directory instead (see worker.ts):
// the coverage providers write them with node:fs.
import { mkdirSync, realpathSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, relative, resolve, sep } from 'node:path';

export const HOST_WRITE = '__vitest_container_host_write__';

export type HostWrite = { op: 'write'; path: string; content: string } | { op: 'mkdir'; path: string } | { op: 'remove'; path: string };
export type HostWriteRequest = HostWrite & { [HOST_WRITE]: 'request'; id: number };

export interface HostWriteReply { [HOST_WRITE]: 'reply'; id: number; error?: string }

export function isHostWriteRequest(message: unknown): message is HostWriteRequest {
  return typeof message === 'object' && message !== null && (message as Record<string, unknown>)[HOST_WRITE] === 'request';
}

export function isHostWriteReply(message: unknown): message is HostWriteReply {
  return typeof message === 'object' && message !== null && (message as Record<string, unknown>)[HOST_WRITE] === 'reply';
}

/** The nearest existing directory at or above path, resolved through symlinks. */
function realExisting(path: string): string {
  for (let p = path; ; p = dirname(p)) {
    try {
      return resolve(realpathSync(p), relative(p, path));
    } catch {
      if (dirname(p) === p) return path;
    }
  }
}

function inside(root: string, path: string): boolean {
  const rel = relative(root, path);
  return rel !== '' && !rel.startsWith('..') && !rel.split(sep).includes('node_modules');
}

/** Does one request for the worker of a project rooted at `root`; the reply says whether it worked. */
export function performHostWrite(root: string, request: HostWriteRequest): HostWriteReply {
  const reply: HostWriteReply = { [HOST_WRITE]: 'reply', id: request.id };
  try {
    const realRoot = realpathSync(root);
    const path = realExisting(resolve(request.path));
    if (!inside(realRoot, path)) throw new Error(`refused: ${request.path} is not under the project root ${root}`);
    if (request.op === 'mkdir') mkdirSync(path, { recursive: true });
    else if (request.op === 'remove') rmSync(path, { force: true });
    else {
      mkdirSync(dirname(path), { recursive: true });
      writeFileSync(path, request.content);
    }
  } catch (err) {
    reply.error = (err as Error).message;
  }
  return reply;
}
