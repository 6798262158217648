// Requests to one registry endpoint (the registry itself or one of its mirrors)
// for one repository: the auth challenge (Basic, or Bearer with a token from the
// realm, anonymous when there is no credential), 429 with Retry-After honoured
// up to a bound, a couple of retries on 5xx, redirects (blob storage elsewhere).
import type { IncomingMessage, OutgoingHttpHeaders } from 'node:http';
import { setTimeout as sleep } from 'node:timers/promises';
import { RegistryError } from '../../../errors.ts';
import { logger } from '../../../log.ts';
import type { RegistriesConfig } from './config.ts';
import { extraCertificates } from './config.ts';
import { findCredentials } from './credentials.ts';
import type { Credential, CredentialLookup } from './credentials.ts';
import { baseUrl, discard, isLoopback, readBody, send } from './http.ts';
import type { Endpoint } from './http.ts';
import { DOCKER_HUB } from './reference.ts';

const log = logger('image');

/** Longest we wait in all for one request when a registry answers 429 Too Many Requests. */
export const MAX_RATE_LIMIT_WAIT_MS = 60_000;
const SERVER_ERROR_RETRIES = 2;
const MAX_REDIRECTS = 5;

interface Challenge {
  scheme: 'basic' | 'bearer';
  params: Record<string, string>;
}

interface HostAuth {
  challenge?: Challenge;
  tokens: Map<string, { value: string; expires: number }>;
}

/** What each host asked for, and its tokens: learnt once per process. */
const hosts = new Map<string, HostAuth>();

export function endpointFor(host: string, config: RegistriesConfig): Endpoint {
  const insecure = (config.insecure ?? []).includes(host);
  return { host, insecure, plainHttp: insecure || isLoopback(host) };
}

export class RegistryClient {
  readonly endpoint: Endpoint;
  /** the registry the reference names (credentials are looked up for it, as Docker does for mirrors) */
  readonly registry: string;
  readonly repository: string;
  private readonly config: RegistriesConfig;
  private lookup: CredentialLookup | undefined;

  constructor(registry: string, host: string, repository: string, config: RegistriesConfig) {
    this.registry = registry;
    this.repository = repository;
    this.config = config;
    this.endpoint = endpointFor(host, config);
  }

  get scope(): string {
    return `repository:${this.repository}:pull`;
  }

  /** The credential this client would use, and where it was looked for. */
  async credentials(): Promise<CredentialLookup> {
    this.lookup ??= await findCredentials(this.registry, this.repository);
    return this.lookup;
  }

  /**
   * A request under /v2/<repository>/. Returns any answer below 400 and 404 (the
   * caller says what was not found); everything else becomes a RegistryError.
   */
  async request(path: string, options: { method?: 'GET' | 'HEAD'; headers?: OutgoingHttpHeaders; what: string }): Promise<IncomingMessage> {
    const url = `${baseUrl(this.endpoint)}/v2/${this.repository}/${path}`;
    const state = hostState(this.endpoint.host);
    let triedFreshAuth = false;
    let waitedMs = 0;
    let serverErrors = 0;
    for (;;) {
      const auth = await this.authorization(state);
      const res = await this.follow(url, { method: options.method, headers: { ...options.headers, ...auth } });
      const status = res.statusCode ?? 0;
      if (status === 401 || (status === 403 && auth.authorization && !triedFreshAuth)) {
        const header = res.headers['www-authenticate'];
        discard(res);
        const challenge = parseChallenge(header);
        if (triedFreshAuth || (!challenge && status === 401)) throw await this.unauthorized(options.what, status);
        if (challenge) state.challenge = challenge;
        state.tokens.delete(this.scope);
        triedFreshAuth = true;
        continue;
      }
      if (status === 403) {
        discard(res);
        throw await this.unauthorized(options.what, status);
      }
      if (status === 429) {
        const waitMs = retryAfterMs(res.headers['retry-after']);
        discard(res);
        if (waitedMs + waitMs > MAX_RATE_LIMIT_WAIT_MS) throw this.rateLimited(res, options.what, waitMs);
        log('%s: 429 from %s, waiting %d ms as Retry-After asks', options.what, this.endpoint.host, waitMs);
        await sleep(waitMs);
        waitedMs += waitMs;
        continue;
      }
      if (status >= 500 && serverErrors < SERVER_ERROR_RETRIES) {
        discard(res);
        serverErrors++;
        await sleep(250 * 2 ** serverErrors);
        continue;
      }
      if (status >= 400 && status !== 404) {
        const body = (await readBody(res, 4096)).trim().slice(0, 300);
        throw new RegistryError('REGISTRY_ERROR', `${options.what}: ${this.endpoint.host} answered ${status} ${res.statusMessage ?? ''}${body ? `: ${body}` : ''}`, {
          fix: status >= 500 ? 'the registry has a problem; try again later' : 'check the reference and the registry',
        });
      }
      return res;
    }
  }

  /** Sends, following redirects; the Authorization header stays with the registry's own host. */
  private async follow(url: string, options: { method?: 'GET' | 'HEAD'; headers: OutgoingHttpHeaders }): Promise<IncomingMessage> {
    let target = url;
    for (let hop = 0; ; hop++) {
      const sameHost = new URL(target).host === this.endpoint.host;
      const headers = sameHost ? options.headers : withoutAuthorization(options.headers);
      const endpoint = sameHost ? this.endpoint : endpointFor(new URL(target).host, this.config);
      const res = await send(endpoint, target, { method: options.method, headers, ca: this.ca(new URL(target).host) });
      const location = res.headers.location;
      if (!location || ![301, 302, 303, 307, 308].includes(res.statusCode ?? 0) || hop >= MAX_REDIRECTS) return res;
      discard(res);
      target = new URL(location, target).href;
    }
  }

  private ca(host = this.endpoint.host): string[] {
    return extraCertificates(host, this.config);
  }

  private async authorization(state: HostAuth): Promise<{ authorization?: string }> {
    const challenge = state.challenge;
    if (!challenge) return {};
    const { credential } = await this.credentials();
    if (challenge.scheme === 'basic') {
      if (!credential?.username || credential.password === undefined) return {};
      return { authorization: `Basic ${Buffer.from(`${credential.username}:${credential.password}`).toString('base64')}` };
    }
    const cached = state.tokens.get(this.scope);
    if (cached && cached.expires > Date.now()) return { authorization: `Bearer ${cached.value}` };
    const token = await this.fetchToken(challenge, credential);
    state.tokens.set(this.scope, token);
    return { authorization: `Bearer ${token.value}` };
  }

  /** The Bearer token flow: GET the realm (Basic with the credential, or anonymous), or POST a refresh token. */
  private async fetchToken(challenge: Challenge, credential: Credential | undefined): Promise<{ value: string; expires: number }> {
    const realm = challenge.params.realm;
    if (!realm) throw new RegistryError('REGISTRY_AUTH_UNSUPPORTED', `${this.endpoint.host} asks for a Bearer token but names no realm to get it from`);
    const url = new URL(realm);
    const scope = this.scope;
    const service = challenge.params.service;
    let res: IncomingMessage;
    const endpoint = endpointFor(url.host, this.config);
    if (credential?.identityToken) {
      const form = new URLSearchParams({ grant_type: 'refresh_token', refresh_token: credential.identityToken, scope, client_id: 'vitest-environment-container' });
      if (service) form.set('service', service);
      res = await send(endpoint, url.href, {
        method: 'POST', body: form.toString(), headers: { 'content-type': 'application/x-www-form-urlencoded' }, ca: this.ca(url.host),
      });
    } else {
      if (service) url.searchParams.set('service', service);
      url.searchParams.set('scope', scope);
      const headers: OutgoingHttpHeaders = {};
      if (credential?.username && credential.password !== undefined) {
        headers.authorization = `Basic ${Buffer.from(`${credential.username}:${credential.password}`).toString('base64')}`;
      }
      res = await send(endpoint, url.href, { headers, ca: this.ca(url.host) });
    }
    const status = res.statusCode ?? 0;
    const body = await readBody(res, 1 << 20);
    if (status === 401 || status === 403) throw await this.unauthorized(`token for ${scope} from ${url.host}`, status);
    if (status >= 400) {
      throw new RegistryError('REGISTRY_ERROR', `the token service ${url.host} answered ${status}: ${body.trim().slice(0, 300)}`, { fix: 'try again later' });
    }
    let json: { token?: string; access_token?: string; expires_in?: number };
    try {
      json = JSON.parse(body) as typeof json;
    } catch {
      throw new RegistryError('REGISTRY_ERROR', `the token service ${url.host} answered something that is not JSON`);
    }
    const value = json.token ?? json.access_token;
    if (!value) throw new RegistryError('REGISTRY_ERROR', `the token service ${url.host} gave no token`);
    // Renew a little early: a token that expires in flight fails a blob download half way.
    const lifetime = Math.max(30, json.expires_in ?? 60) * 1000;
    return { value, expires: Date.now() + lifetime - 10_000 };
  }

  private async unauthorized(what: string, status: number): Promise<RegistryError> {
    const { credential, looked } = await this.credentials();
    const denied = status === 403 ? 'denied access' : 'refused';
    const login = `docker login ${this.registry} (or podman login ${this.registry})`;
    if (credential) {
      const who = credential.username ? `user "${credential.username}"` : 'an identity token';
      return new RegistryError('REGISTRY_UNAUTHORIZED', `${what}: ${this.endpoint.host} ${denied} the credentials of ${who} from ${credential.source} for ${this.repository}`, {
        fix: `log in again: ${login}, or correct that entry; check that the account may pull ${this.repository}`,
      });
    }
    const hub = this.registry === DOCKER_HUB ? ' (Docker Hub says this also when the repository does not exist)' : '';
    return new RegistryError('REGISTRY_UNAUTHORIZED', `${what}: ${this.endpoint.host} ${denied} an anonymous pull of ${this.repository}${hub}; no credentials for ${this.registry} (looked in ${looked.join(', ')})`, {
      fix: `${login}, or point REGISTRY_AUTH_FILE or DOCKER_CONFIG at a file that has them; check the repository name`,
    });
  }

  private rateLimited(res: IncomingMessage, what: string, waitMs: number): RegistryError {
    const limit = res.headers['ratelimit-limit'];
    const remaining = res.headers['ratelimit-remaining'];
    const quota = limit ? ` (limit ${String(limit)}${remaining !== undefined ? `, remaining ${String(remaining)}` : ''})` : '';
    return new RegistryError('REGISTRY_RATE_LIMITED', `${what}: ${this.endpoint.host} answered 429 Too Many Requests${quota} and asks to wait ${Math.ceil(waitMs / 1000)} s, more than the ${MAX_RATE_LIMIT_WAIT_MS / 1000} s a pull waits`, {
      fix: `try again later; authenticated pulls (${this.registry === DOCKER_HUB ? 'docker login' : 'log in'}) usually get a higher limit, or configure a mirror (VITEST_CONTAINER_REGISTRIES)`,
    });
  }
}

function hostState(host: string): HostAuth {
  let state = hosts.get(host);
  if (!state) {
    state = { tokens: new Map() };
    hosts.set(host, state);
  }
  return state;
}

/** Forget challenges and tokens (tests restart registries on the same port). */
export function forgetRegistryAuth(): void {
  hosts.clear();
}

function withoutAuthorization(headers: OutgoingHttpHeaders): OutgoingHttpHeaders {
  const { authorization: _drop, ...rest } = headers;
  return rest;
}

/** `Bearer realm="https://auth.docker.io/token",service="registry.docker.io"` -> scheme and params. */
export function parseChallenge(header: string | undefined): Challenge | undefined {
  if (!header) return undefined;
  const m = /^\s*(\w+)\s*(.*)$/s.exec(header);
  const scheme = m?.[1]?.toLowerCase();
  if (scheme !== 'basic' && scheme !== 'bearer') return undefined;
  const params: Record<string, string> = {};
  for (const p of m![2]!.matchAll(/(\w+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^\s,]+))/g)) params[p[1]!.toLowerCase()] = (p[2] ?? p[3] ?? '').replace(/\\(.)/g, '$1');
  return { scheme, params };
}

/** Retry-After as seconds or an HTTP date; 1 s when absent or unreadable. */
export function retryAfterMs(header: string | string[] | undefined): number {
  const value = Array.isArray(header) ? header[0] : header;
  if (!value) return 1000;
  if (/^\d+$/.test(value.trim())) return Number(value) * 1000;
  const date = Date.parse(value);
  return Number.isNaN(date) ? 1000 : Math.max(0, date - Date.now());
}
