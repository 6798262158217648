// The Node versions this package runs on. Older ones fail deep inside Vitest or
// this package with errors that name no cause (Node 20: `Map.groupBy is not a
// function`), so every entry point checks first and says what to do.
import { HostCapabilityError } from './errors.ts';

export const MINIMUM_NODE = '22.12.0';

function parts(version: string): number[] {
  return version.replace(/^v/, '').split('.').map((p) => Number.parseInt(p, 10) || 0);
}

/** True when `version` (e.g. process.version) is at least MINIMUM_NODE. */
export function isSupportedNode(version: string = process.version): boolean {
  const [major = 0, minor = 0, patch = 0] = parts(version);
  const [wantMajor = 0, wantMinor = 0, wantPatch = 0] = parts(MINIMUM_NODE);
  if (major !== wantMajor) return major > wantMajor;
  if (minor !== wantMinor) return minor > wantMinor;
  return patch >= wantPatch;
}

/** Throws NODE_VERSION_UNSUPPORTED when this Node (or `version`) is older than MINIMUM_NODE. */
export function assertSupportedNode(version: string = process.version, execPath: string = process.execPath): void {
  if (isSupportedNode(version)) return;
  throw new HostCapabilityError('NODE_VERSION_UNSUPPORTED',
    `vitest-environment-container needs Node ${MINIMUM_NODE} or newer; this is Node ${version.replace(/^v/, '')} (${execPath})`,
    { fix: `install Node 22.12+ (e.g. \`nvm install 22\` or your distribution's nodejs package) and run the tests with it` });
}
