// The host ids a sandbox's ids stand for when it is started as root. A sandbox is never host root:
// it runs in a user namespace whose ids 0-65535 are an unprivileged host range (as podman's
// --userns=auto and Kubernetes' hostUsers: false do), so what host root's DAC would deny an ordinary
// user stays denied to the sandbox's root. Image layers in root's cache are unpacked with their owners
// shifted into this range (src/image/unpack), so an image's files keep their owners inside.
import { readFileSync } from 'node:fs';

/** Ids a sandbox has: 0-65535, enough for every image's users (nobody is 65534). */
export const SANDBOX_ID_COUNT = 65536;

/**
 * Where the range starts when /etc/subuid names none for us: 0x70000000, in the block that systemd's
 * uid allocation (UIDS-GIDS.md) leaves unused, above useradd's subordinate ranges (at most 600100000)
 * and nspawn's container ranges (up to 0x6FFFFFFF), below 2^31 (tools that read uids as signed).
 */
export const DEFAULT_ID_RANGE_START = 0x7000_0000;

/** The /etc/subuid and /etc/subgid owner name that sets the range, as podman's "containers" does for it. */
export const ID_RANGE_OWNER = 'vitest-container';

export interface IdRange { start: number; count: number }

/** The first range /etc/subuid (or /etc/subgid) grants one of owners (a name or a numeric id). */
export function subordinateRange(file: string, owners: string[]): IdRange | undefined {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch {
    return undefined;
  }
  for (const line of text.split('\n')) {
    const [owner = '', start, count] = line.trim().split(':');
    if (owners.includes(owner) && Number(count) > 0 && Number(start) > 0) return { start: Number(start), count: Number(count) };
  }
  return undefined;
}

function configured(file: string): IdRange | undefined {
  const range = subordinateRange(file, [ID_RANGE_OWNER]);
  return range && range.count >= SANDBOX_ID_COUNT ? { start: range.start, count: SANDBOX_ID_COUNT } : undefined;
}

let cached: { uids: IdRange; gids: IdRange } | undefined;

/** The host uid and gid ranges a root-started sandbox's ids 0-65535 map to. */
export function rootSandboxIdRanges(): { uids: IdRange; gids: IdRange } {
  cached ??= {
    uids: configured('/etc/subuid') ?? { start: DEFAULT_ID_RANGE_START, count: SANDBOX_ID_COUNT },
    gids: configured('/etc/subgid') ?? { start: DEFAULT_ID_RANGE_START, count: SANDBOX_ID_COUNT },
  };
  return cached;
}

/**
 * The ids 0.. this process's own user namespace maps, as its extents (each a run of ids the kernel maps
 * as one), when it is not the host's: inside a rootless pool worker, uid 0 there is the caller.
 * undefined in the initial user namespace. A nested map must keep to these extents: the kernel
 * refuses a range that spans two of its parent's.
 */
export function ownNamespaceIds(kind: 'uid' | 'gid'): IdRange[] | undefined {
  let text: string;
  try {
    text = readFileSync(`/proc/self/${kind}_map`, 'utf8');
  } catch {
    return undefined;
  }
  const lines = text.trim().split('\n').map((l) => l.trim().split(/\s+/).map(Number));
  if (lines.length === 1 && lines[0]![0] === 0 && lines[0]![1] === 0 && lines[0]![2] === 4294967295) return undefined;
  // Extents from 0 as far as they run on without a gap.
  const extents: IdRange[] = [];
  let next = 0;
  for (const [inside, , size] of lines.sort((a, b) => a[0]! - b[0]!)) {
    if (inside !== next) break;
    extents.push({ start: inside, count: size! });
    next += size!;
  }
  return extents;
}
