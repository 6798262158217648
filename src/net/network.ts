// Private networks shared by several sandboxes. A network is one network
// namespace, held open by a small pause sandbox; members are started inside it
// and reach each other by alias (every member's /etc/hosts is the network's
// hosts file, bound read-only and rewritten in place as members join).
// Members share loopback like the containers of a Kubernetes pod: two members
// cannot listen on the same port. Nothing outside the namespace reaches in,
// and there is no route out.
import { mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { InvalidOptionsError } from '../errors.ts';
import { nextInSequence, threadState } from '../thread-state.ts';
import type { Container } from '../runtime/container.ts';

export interface NetworkNamespaces {
  network: string;
  /** The pause sandbox's own user namespace (it has one unless started by a pool worker's peer): members join it first. */
  user?: string;
}

type Starter = (options: { cmd: string[]; hostname: string }) => Promise<Container>;

const ALIAS = /^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?$/;

export class Network implements AsyncDisposable {
  readonly name: string;
  readonly #pause: Container;
  readonly #dir: string;
  readonly #aliases = new Set<string>();
  #removed = false;

  constructor(name: string, pause: Container) {
    this.name = name;
    this.#pause = pause;
    this.#dir = mkdtempSync(join(tmpdir(), 'vtc-net-'));
    this.#writeHosts();
  }

  static async create(name: string, start: Starter): Promise<Network> {
    const pause = await start({ cmd: ['sleep', 'infinity'], hostname: name });
    return new Network(name, pause);
  }

  get hostsFile(): string {
    return join(this.#dir, 'hosts');
  }

  get removed(): boolean {
    return this.#removed;
  }

  /** The namespaces a member joins: the network's, and the user namespace that owns it (a member must be born in it to use it). */
  namespaces(): NetworkNamespaces {
    const pid = this.#pause.pid;
    const user = `/proc/${pid}/ns/user`;
    const own = statSync(user).ino !== statSync('/proc/self/ns/user').ino;
    return { network: `/proc/${pid}/ns/net`, ...(own ? { user } : {}) };
  }

  /** Makes alias resolve (to the shared loopback) in every member, present and future. */
  addAlias(alias: string): void {
    if (!ALIAS.test(alias)) throw new InvalidOptionsError('INVALID_OPTIONS', `alias: "${alias}" is not a valid host name`);
    this.#aliases.add(alias);
    this.#writeHosts();
  }

  #writeHosts(): void {
    // Same file, rewritten in place: the members' bind mounts see the new names at once.
    const names = ['localhost', ...this.#aliases].join(' ');
    writeFileSync(this.hostsFile, `127.0.0.1\t${names}\n::1\t${names}\n`, { mode: 0o644 });
  }

  async remove(): Promise<void> {
    if (this.#removed) return;
    this.#removed = true;
    networks.delete(this.name);
    await this.#pause.stop({ timeout: 0 });
    rmSync(this.#dir, { recursive: true, force: true });
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.remove();
  }
}

/** Networks by name, shared by everything in this thread (options given as JSON name them). */
const networks = threadState('networks', () => new Map<string, Network>());

export function namedNetworks(): Map<string, Network> {
  return networks;
}

export async function networkNamed(name: string | undefined, start: Starter): Promise<Network> {
  const key = name ?? `net-${process.pid}-${nextInSequence('network')}`;
  const existing = networks.get(key);
  if (existing && !existing.removed) return existing;
  const network = await Network.create(key, start);
  networks.set(key, network);
  return network;
}
