// Which registries may be reached over plain HTTP, which mirrors to try first,
// where extra CA certificates live. From a JSON file:
//   $VITEST_CONTAINER_REGISTRIES, else ${XDG_CONFIG_HOME:-~/.config}/vitest-environment-container/registries.json
//   { "insecure": ["registry.local:5000"],
//     "mirrors": { "docker.io": ["mirror.internal:5000"] },
//     "certsDirs": ["/etc/docker/certs.d"] }
// or from ResolveOptions.registries, which replaces the file.
import { readdirSync, readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { RegistryError } from '../../../errors.ts';

export interface RegistriesConfig {
  /** host[:port] reachable over plain HTTP, with TLS certificates not verified (loopback always is) */
  insecure?: string[];
  /** registry -> mirrors tried in order before it, e.g. { "docker.io": ["mirror.example:5000"] } */
  mirrors?: Record<string, string[]>;
  /** directories with <host[:port]>/*.crt CA files, as Docker and podman keep them */
  certsDirs?: string[];
}

const DEFAULT_CERTS_DIRS = ['/etc/docker/certs.d', '/etc/containers/certs.d'];

export function registriesConfigPath(env: NodeJS.ProcessEnv = process.env): string {
  if (env.VITEST_CONTAINER_REGISTRIES) return env.VITEST_CONTAINER_REGISTRIES;
  return join(env.XDG_CONFIG_HOME || join(env.HOME || homedir(), '.config'), 'vitest-environment-container/registries.json');
}

export function loadRegistriesConfig(env: NodeJS.ProcessEnv = process.env): RegistriesConfig {
  const path = registriesConfigPath(env);
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch {
    return {};
  }
  try {
    return checkConfig(JSON.parse(text), path);
  } catch (err) {
    if (err instanceof RegistryError) throw err;
    throw new RegistryError('REGISTRY_CONFIG_INVALID', `${path} is not valid JSON: ${(err as Error).message}`, { fix: `repair or remove ${path}` });
  }
}

function checkConfig(value: unknown, where: string): RegistriesConfig {
  const c = value as RegistriesConfig;
  const strings = (v: unknown): boolean => Array.isArray(v) && v.every((s) => typeof s === 'string');
  const ok = typeof c === 'object' && c !== null
    && (c.insecure === undefined || strings(c.insecure))
    && (c.certsDirs === undefined || strings(c.certsDirs))
    && (c.mirrors === undefined || (typeof c.mirrors === 'object' && Object.values(c.mirrors).every(strings)));
  if (!ok) {
    throw new RegistryError('REGISTRY_CONFIG_INVALID', `${where}: expected { "insecure": [hosts], "mirrors": { registry: [hosts] }, "certsDirs": [dirs] }`, {
      fix: `repair or remove ${where}`,
    });
  }
  return c;
}

/** PEM certificates from <certsDir>/<host>/*.crt (Docker's and podman's convention), read once per host. */
const caCache = new Map<string, string[]>();
export function extraCertificates(host: string, config: RegistriesConfig): string[] {
  const dirs = config.certsDirs ?? DEFAULT_CERTS_DIRS;
  const key = `${host}\n${dirs.join('\n')}`;
  let certs = caCache.get(key);
  if (!certs) {
    certs = [];
    for (const dir of dirs) {
      let names: string[] = [];
      try {
        names = readdirSync(join(dir, host));
      } catch { /* no directory for this host */ }
      for (const name of names.filter((n) => n.endsWith('.crt')).sort()) certs.push(readFileSync(join(dir, host, name), 'utf8'));
    }
    caCache.set(key, certs);
  }
  return certs;
}
