// One HTTP request to a registry, over node:http(s) with keep-alive (undici's
// fetch would wrap every body chunk in a web stream; blobs are streamed into
// the unpacker as they arrive). Plain HTTP only for loopback and registries
// listed as insecure, unverified TLS only for the latter; transport failures
// become typed errors.
import http from 'node:http';
import https from 'node:https';
import type { IncomingMessage, OutgoingHttpHeaders } from 'node:http';
import { RegistryError } from '../../../errors.ts';

export interface Endpoint {
  /** host[:port] the API answers on */
  host: string;
  /** loopback or listed as insecure: tried over plain HTTP when it does not speak TLS */
  plainHttp: boolean;
  /** listed as insecure: TLS certificates are not verified (loopback ones are) */
  insecure: boolean;
}

export interface SendOptions {
  method?: 'GET' | 'HEAD' | 'POST';
  headers?: OutgoingHttpHeaders;
  body?: string;
  /** certificate authorities to trust besides Node's (e.g. from certs.d) */
  ca?: string[];
}

/** No byte for this long on a connection that should be sending: the registry is gone. */
const IDLE_TIMEOUT_MS = 30_000;

const agents = {
  http: new http.Agent({ keepAlive: true, maxSockets: 16 }),
  https: new https.Agent({ keepAlive: true, maxSockets: 16 }),
  insecure: new https.Agent({ keepAlive: true, maxSockets: 16, rejectUnauthorized: false }),
};

/** Per host, once learnt: an insecure registry that answered only on plain HTTP. */
const plainHttpHosts = new Set<string>();

const TLS_CODES = new Set([
  'DEPTH_ZERO_SELF_SIGNED_CERT', 'SELF_SIGNED_CERT_IN_CHAIN', 'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT', 'UNABLE_TO_GET_ISSUER_CERT_LOCALLY', 'CERT_HAS_EXPIRED', 'CERT_NOT_YET_VALID',
  'ERR_TLS_CERT_ALTNAME_INVALID', 'CERT_SIGNATURE_FAILURE', 'CERT_REVOKED', 'ERR_SSL_WRONG_VERSION_NUMBER', 'EPROTO',
]);
const UNREACHABLE_CODES = new Set([
  'ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH', 'ETIMEDOUT', 'ECONNRESET', 'EPIPE', 'ENETDOWN',
]);

export function isLoopback(host: string): boolean {
  const name = host.replace(/:\d+$/, '').replace(/^\[(.*)\]$/, '$1');
  return name === 'localhost' || name === '::1' || /^127\.\d+\.\d+\.\d+$/.test(name);
}

export function baseUrl(endpoint: Endpoint): string {
  return `${endpoint.plainHttp && plainHttpHosts.has(endpoint.host) ? 'http' : 'https'}://${endpoint.host}`;
}

/** Sends the request; a loopback or insecure registry that does not speak TLS is asked again over plain HTTP. */
export async function send(endpoint: Endpoint, url: string, options: SendOptions = {}): Promise<IncomingMessage> {
  try {
    return await sendOnce(endpoint, new URL(url), options);
  } catch (err) {
    const target = new URL(url);
    const speaksPlainHttp = endpoint.plainHttp && target.protocol === 'https:' && target.host === endpoint.host && isTlsProtocolError(err);
    if (!speaksPlainHttp) throw err;
    plainHttpHosts.add(endpoint.host);
    target.protocol = 'http:';
    return sendOnce(endpoint, target, options);
  }
}

function isTlsProtocolError(err: unknown): boolean {
  const e = (err as { cause?: NodeJS.ErrnoException }).cause ?? (err as NodeJS.ErrnoException);
  return e?.code === 'EPROTO' || e?.code === 'ERR_SSL_WRONG_VERSION_NUMBER' || /wrong version number|packet length too long|http request/i.test(e?.message ?? '');
}

function sendOnce(endpoint: Endpoint, url: URL, options: SendOptions, retried = false): Promise<IncomingMessage> {
  const secure = url.protocol === 'https:';
  if (!secure && !endpoint.plainHttp) {
    throw new RegistryError('REGISTRY_INSECURE', `${url.host} would be reached over plain HTTP (${url.href}), which is allowed only for loopback and registries listed as insecure`, {
      fix: `add "${url.host}" to "insecure" in the registries config (see VITEST_CONTAINER_REGISTRIES), or serve it over HTTPS`,
    });
  }
  const verify = secure && !(endpoint.insecure && url.host === endpoint.host);
  const agent = !secure ? agents.http : verify ? agents.https : agents.insecure;
  const lib = secure ? https : http;
  return new Promise((resolve, reject) => {
    const req = lib.request(url, {
      method: options.method ?? 'GET',
      headers: { 'user-agent': 'vitest-environment-container', ...options.headers },
      // A custom CA needs its own connection pool: the shared agent's sockets trust only Node's.
      agent: options.ca?.length && secure ? undefined : agent,
      ca: options.ca?.length ? options.ca : undefined,
      rejectUnauthorized: verify,
    }, resolve);
    req.setTimeout(IDLE_TIMEOUT_MS, () => req.destroy(Object.assign(new Error(`no answer in ${IDLE_TIMEOUT_MS / 1000} s`), { code: 'ETIMEDOUT' })));
    req.on('error', (err: NodeJS.ErrnoException) => {
      // A kept-alive connection the server closed just as we reused it: ask again on a new one.
      if (req.reusedSocket && !retried && (err.code === 'ECONNRESET' || err.code === 'EPIPE')) resolve(sendOnce(endpoint, url, options, true));
      else reject(transportError(err, url));
    });
    req.end(options.body);
  });
}

/** A failure below HTTP (connect, TLS, a dropped connection) as a typed error. */
function transportError(err: unknown, url: URL): Error {
  if (err instanceof RegistryError) return err;
  const e = err as NodeJS.ErrnoException;
  const code = e?.code ?? '';
  if (TLS_CODES.has(code) || /certificate|ssl|tls/i.test(e?.message ?? '')) {
    return new RegistryError('REGISTRY_TLS', `TLS with ${url.host} failed: ${e.message} (${code || 'TLS'})`, {
      cause: err,
      fix: `trust the registry's CA (NODE_EXTRA_CA_CERTS=ca.pem, or /etc/docker/certs.d/${url.host}/ca.crt), or for a test registry add it to "insecure" in the registries config`,
    });
  }
  if (UNREACHABLE_CODES.has(code)) {
    return new RegistryError('REGISTRY_UNREACHABLE', `cannot reach ${url.host}: ${e.message}`, {
      cause: err,
      fix: `check that the registry runs and this machine can reach it (offline? an image already pulled works with pull: 'missing' or 'never')`,
    });
  }
  return new RegistryError('REGISTRY_UNREACHABLE', `request to ${url.host} failed: ${e?.message ?? String(err)}`, { cause: err });
}

/** Reads a (small) response body as text, at most `limit` bytes. */
export async function readBody(res: IncomingMessage, limit = 1 << 20): Promise<string> {
  const parts: Buffer[] = [];
  let size = 0;
  for await (const chunk of res as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > limit) {
      res.destroy();
      break;
    }
    parts.push(chunk);
  }
  return Buffer.concat(parts).toString('utf8');
}

/** Lets the connection go back to the pool without reading what is left. */
export function discard(res: IncomingMessage): void {
  res.resume();
}
