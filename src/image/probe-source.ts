// For `doctor --image REF`: whether a registry or daemon image can be reached
// with the credentials at hand, without downloading it. One manifest request
// (through the same auth flow as a pull), or the daemon's inspect.
import { classifyImageName } from './image-name.ts';
import type { RegistriesConfig } from './source/registry/config.ts';
import { formatReference } from './source/registry/reference.ts';
import { defaultCacheDir } from './cache-layout.ts';
import { hostPlatform } from './platform.ts';

export interface SourceProbe {
  kind: 'files' | 'registry' | 'daemon';
  /** one line: what answered, with which credentials, and the digest the reference points at */
  summary: string;
}

/** Throws the error a pull would give (RegistryError: unreachable, TLS, unauthorized, not found...). */
export async function probeImageSource(ref: string, registries?: RegistriesConfig): Promise<SourceProbe> {
  const name = classifyImageName(ref);
  if (name.kind === 'files') return { kind: 'files', summary: `${name.ref.path} (a local image, read from disk)` };
  if (name.kind === 'daemon') {
    const { daemonPuller } = await import('./source/daemon.ts');
    const puller = daemonPuller(name.name, defaultCacheDir(), hostPlatform());
    const id = await puller.current();
    return { kind: 'daemon', summary: `${puller.from} has ${name.name} (id ${id.slice(0, 19)})` };
  }
  const { RegistrySource } = await import('./source/registry/source.ts');
  const { loadRegistriesConfig } = await import('./source/registry/config.ts');
  const source = new RegistrySource(name.ref, registries ?? loadRegistriesConfig());
  const { credential, looked } = await source.registryClient.credentials();
  const top = await source.top();
  const creds = credential ? `credentials from ${credential.source}` : `anonymous (no credentials in ${looked.join(', ')})`;
  return { kind: 'registry', summary: `${formatReference(name.ref)} -> ${top.digest} (${top.mediaType}) from ${source.clients.map((c) => c.endpoint.host).join(', ')}; ${creds}` };
}
