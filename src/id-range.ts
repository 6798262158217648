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

function fromFile(file: string): IdRange | undefined {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch {
    return undefined;
  }
  for (const line of text.split('\n')) {
    const [owner, start, count] = line.trim().split(':');
    if (owner === ID_RANGE_OWNER && Number(count) >= SANDBOX_ID_COUNT && Number(start) > 0) return { start: Number(start), count: SANDBOX_ID_COUNT };
  }
  return undefined;
}

let cached: { uids: IdRange; gids: IdRange } | undefined;

/** The host uid and gid ranges a root-started sandbox's ids 0-65535 map to. */
export function rootSandboxIdRanges(): { uids: IdRange; gids: IdRange } {
  cached ??= {
    uids: fromFile('/etc/subuid') ?? { start: DEFAULT_ID_RANGE_START, count: SANDBOX_ID_COUNT },
    gids: fromFile('/etc/subgid') ?? { start: DEFAULT_ID_RANGE_START, count: SANDBOX_ID_COUNT },
  };
  return cached;
}
