// Credentials where `docker login` and `podman login` leave them:
//   $REGISTRY_AUTH_FILE, else ${XDG_RUNTIME_DIR}/containers/auth.json and
//   ${XDG_CONFIG_HOME:-~/.config}/containers/auth.json (podman, buildah, skopeo);
//   $DOCKER_CONFIG/config.json, else ~/.docker/config.json (docker).
// In each file: credHelpers[registry] (a docker-credential-* program), then an
// auths entry ("auth": base64 user:password, or username/password, or
// identitytoken), then credsStore (the default helper). The first file that
// has something for the registry wins; every answer says where it came from.
import { readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { RegistryError } from '../../../errors.ts';
import { logger } from '../../../log.ts';
import { DOCKER_HUB } from './reference.ts';

const log = logger('image');

export interface Credential {
  username?: string;
  password?: string;
  /** an OAuth2 refresh token (docker login to a registry with identity tokens) */
  identityToken?: string;
  /** where it came from, for messages: '/home/me/.docker/config.json (auths)' */
  source: string;
}

export interface CredentialLookup {
  credential?: Credential;
  /** the files looked in (existing or not), for messages when nothing was found */
  looked: string[];
}

interface AuthFile {
  auths?: Record<string, { auth?: string; username?: string; password?: string; identitytoken?: string }>;
  credHelpers?: Record<string, string>;
  credsStore?: string;
}

const HELPER_TIMEOUT_MS = 30_000;
/** Docker keeps Docker Hub's entry under its old v1 address. */
const DOCKER_HUB_KEY = 'https://index.docker.io/v1/';

export function authFiles(env: NodeJS.ProcessEnv = process.env): string[] {
  const home = env.HOME || homedir();
  const files: string[] = [];
  if (env.REGISTRY_AUTH_FILE) files.push(env.REGISTRY_AUTH_FILE);
  else {
    if (env.XDG_RUNTIME_DIR) files.push(join(env.XDG_RUNTIME_DIR, 'containers/auth.json'));
    files.push(join(env.XDG_CONFIG_HOME || join(home, '.config'), 'containers/auth.json'));
  }
  files.push(join(env.DOCKER_CONFIG || join(home, '.docker'), 'config.json'));
  return files;
}

/** 'https://index.docker.io/v1/' -> 'docker.io'; 'http://r.example:5000/' -> 'r.example:5000'; 'ghcr.io/acme' stays. */
function normalizeKey(key: string): string {
  let k = key.replace(/^[a-z]+:\/\//, '').replace(/\/+$/, '');
  if (/^[^/]+\/v[12]$/.test(k)) k = k.replace(/\/v[12]$/, '');
  const [host, ...path] = k.split('/');
  const h = host === 'index.docker.io' || host === 'registry-1.docker.io' ? DOCKER_HUB : host!;
  return [h, ...path].join('/');
}

/** The most specific key for registry/repository: podman allows keys scoped to a namespace or repository. */
function bestKey(keys: string[], registry: string, repository: string): string | undefined {
  const want = `${registry}/${repository}`;
  let best: string | undefined;
  let bestLength = -1;
  for (const key of keys) {
    const k = normalizeKey(key);
    if ((k === registry || want === k || want.startsWith(`${k}/`)) && k.length > bestLength) [best, bestLength] = [key, k.length];
  }
  return best;
}

const cache = new Map<string, Promise<CredentialLookup>>();

/** The credential for a registry (and repository), looked up once per process. */
export function findCredentials(registry: string, repository: string, env: NodeJS.ProcessEnv = process.env): Promise<CredentialLookup> {
  const files = authFiles(env);
  const key = `${registry}/${repository}\n${files.join('\n')}`;
  let found = cache.get(key);
  if (!found) {
    found = lookUp(registry, repository, files, env);
    cache.set(key, found);
    found.catch(() => cache.delete(key));
  }
  return found;
}

/** Forget what was looked up (tests change credentials between pulls). */
export function forgetCredentials(): void {
  cache.clear();
}

async function lookUp(registry: string, repository: string, files: string[], env: NodeJS.ProcessEnv): Promise<CredentialLookup> {
  const looked: string[] = [];
  for (const file of files) {
    looked.push(file);
    let config: AuthFile;
    try {
      config = JSON.parse(readFileSync(file, 'utf8')) as AuthFile;
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'ENOENT' || code === 'ENOTDIR' || code === 'EACCES') continue;
      throw new RegistryError('REGISTRY_AUTH_FILE_INVALID', `${file} is not valid JSON: ${(err as Error).message}`, {
        cause: err, fix: `repair ${file} (or log in again with docker login / podman login)`,
      });
    }
    const helperKey = bestKey(Object.keys(config.credHelpers ?? {}), registry, repository);
    if (helperKey) {
      const helper = config.credHelpers![helperKey]!;
      const credential = await runHelper(helper, registry, `${file} (credHelpers: docker-credential-${helper})`, env);
      if (credential) return { credential, looked };
    }
    const authKey = bestKey(Object.keys(config.auths ?? {}), registry, repository);
    const entry = authKey ? config.auths![authKey]! : undefined;
    const credential = entry && fromEntry(entry, `${file} (auths "${authKey}")`);
    if (credential) return { credential, looked };
    if (config.credsStore) {
      const fromStore = await runHelper(config.credsStore, registry, `${file} (credsStore: docker-credential-${config.credsStore})`, env);
      if (fromStore) return { credential: fromStore, looked };
    }
  }
  return { looked };
}

function fromEntry(entry: NonNullable<AuthFile['auths']>[string], source: string): Credential | undefined {
  if (entry.identitytoken) return { identityToken: entry.identitytoken, username: entry.username, source };
  if (entry.auth) {
    const decoded = Buffer.from(entry.auth, 'base64').toString('utf8');
    const colon = decoded.indexOf(':');
    if (colon < 0) {
      throw new RegistryError('REGISTRY_AUTH_FILE_INVALID', `${source}: "auth" is not base64 of user:password`, { fix: 'log in again with docker login / podman login' });
    }
    return { username: decoded.slice(0, colon), password: decoded.slice(colon + 1), source };
  }
  if (entry.username && entry.password) return { username: entry.username, password: entry.password, source };
  return undefined;
}

/** `docker-credential-NAME get` with the server on stdin; exit 1 with "not found" means no entry. */
async function runHelper(name: string, registry: string, source: string, env: NodeJS.ProcessEnv): Promise<Credential | undefined> {
  const program = `docker-credential-${name}`;
  const server = registry === DOCKER_HUB ? DOCKER_HUB_KEY : registry;
  // Loaded here: most pulls run no helper, and execa's import costs a test worker ~100 ms.
  const { execa } = await import('execa');
  const result = await execa(program, ['get'], { input: server, reject: false, timeout: HELPER_TIMEOUT_MS, env, extendEnv: false });
  if (result.failed) {
    const said = `${result.stdout} ${result.stderr}`.trim();
    if (result.exitCode !== undefined && /not found|no credentials/i.test(said)) {
      log('%s has no credentials for %s', program, registry);
      return undefined;
    }
    const why = (result as { code?: string }).code === 'ENOENT' ? 'is not installed (not on PATH)' : `failed: ${said || result.shortMessage}`;
    throw new RegistryError('REGISTRY_CREDENTIAL_HELPER_FAILED', `${program}, named in ${source}, ${why}`, {
      fix: `install ${program}, or remove it from the config file, or log in again`,
    });
  }
  let answer: { Username?: string; Secret?: string };
  try {
    answer = JSON.parse(result.stdout) as { Username?: string; Secret?: string };
  } catch {
    throw new RegistryError('REGISTRY_CREDENTIAL_HELPER_FAILED', `${program}, named in ${source}, answered something that is not JSON`);
  }
  if (!answer.Secret) return undefined;
  if (answer.Username === '<token>') return { identityToken: answer.Secret, source };
  return { username: answer.Username, password: answer.Secret, source };
}
