// Forwarded ports: each container port listed in `ports` is reachable from the
// test on 127.0.0.1 at a host port the kernel picks (or the one asked for).
// The forwarding itself runs in the sandbox's pid 1 (native/forward.c).
import { InvalidOptionsError } from '../errors.ts';

export type PortOption = number | { port: number; hostPort?: number };

export interface PortMapping { port: number; hostPort: number }

export const PORTS_ANNOTATION = 'org.vitest-container.ports';

function validPort(n: unknown, allowZero: boolean): n is number {
  return typeof n === 'number' && Number.isInteger(n) && n >= (allowZero ? 0 : 1) && n <= 65535;
}

export function normalizePorts(ports: unknown): { port: number; hostPort: number }[] {
  if (ports === undefined) return [];
  if (!Array.isArray(ports)) throw new InvalidOptionsError('INVALID_OPTIONS', 'ports must be an array, e.g. [6379] or [{ port: 80, hostPort: 8080 }]');
  const out = ports.map((p: unknown) => {
    const port = typeof p === 'object' && p !== null ? (p as { port?: unknown }).port : p;
    const hostPort = typeof p === 'object' && p !== null ? (p as { hostPort?: unknown }).hostPort ?? 0 : 0;
    if (!validPort(port, false) || !validPort(hostPort, true)) {
      throw new InvalidOptionsError('INVALID_OPTIONS', `ports: ${JSON.stringify(p)} is not a port (1-65535)`);
    }
    return { port, hostPort };
  });
  const seen = new Set<number>(), hostPorts = new Set<number>();
  for (const { port, hostPort } of out) {
    if (seen.has(port)) throw new InvalidOptionsError('INVALID_OPTIONS', `ports: ${port} is listed twice`);
    seen.add(port);
    if (hostPort && hostPorts.has(hostPort)) {
      throw new InvalidOptionsError('INVALID_OPTIONS', `ports: host port ${hostPort} is asked for twice; one host port forwards to one container port`,
        { fix: 'give each entry its own hostPort, or leave hostPort out to get a free one' });
    }
    hostPorts.add(hostPort);
  }
  return out;
}

export function portsAnnotation(ports: { port: number; hostPort: number }[]): string {
  return ports.map(({ port, hostPort }) => (hostPort ? `${hostPort}:${port}` : String(port))).join(',');
}

/** Ports the image declares ("6379/tcp"), as numbers. */
export function exposedPorts(exposed: Record<string, object> | undefined): number[] {
  return Object.keys(exposed ?? {}).flatMap((k) => {
    const [port, proto = 'tcp'] = k.split('/');
    return proto === 'tcp' && Number(port) > 0 ? [Number(port)] : [];
  });
}
