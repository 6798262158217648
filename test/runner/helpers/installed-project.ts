// A project as a user has it: this package installed from its `npm pack` tarball into a
// fresh directory, next to the Vitest (or Jest) version under test and whatever else the
// suite needs, all from the npm registry. The tarball is packed once per test process;
// a project is installed once per set of dependencies (installs are the slow part).
import { execFileSync } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll } from 'vitest';

const repo = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
const work = mkdtempSync(join(tmpdir(), 'vtc-installed-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

// The Node running the tests first on PATH, so that install scripts run with a supported
// Node whatever the system's is.
const env = { ...process.env, PATH: `${dirname(process.execPath)}:${process.env.PATH}`, npm_config_audit: 'false', npm_config_fund: 'false', npm_config_update_notifier: 'false' };

let tarball: string | undefined;

/** `npm pack` of this repository (runs its prepare script: the build). */
export function packedTarball(): string {
  if (tarball) return tarball;
  const out = join(work, 'pack');
  mkdirSync(out, { recursive: true });
  execFileSync('npm', ['pack', '--pack-destination', out], { cwd: repo, env, stdio: ['ignore', 'ignore', 'pipe'] });
  const [file] = readdirSync(out).filter((f) => f.endsWith('.tgz'));
  tarball = join(out, file!);
  return tarball;
}

/**
 * A fresh project with `fixture`'s files (a directory under test/fixtures), the packed package
 * and `dependencies` installed. Peer dependencies are installed as listed, not resolved by npm
 * (`--legacy-peer-deps`): the test picks the exact versions to pair.
 */
export function installedProject(fixture: string, dependencies: Record<string, string>): string {
  const dir = mkdtempSync(join(work, `${fixture}-`));
  cpSync(join(repo, 'test', 'fixtures', fixture), dir, { recursive: true });
  writeFileSync(join(dir, 'package.json'), JSON.stringify({
    name: `installed-${fixture}`, private: true, type: 'module',
    dependencies: { ...dependencies, 'vitest-environment-container': `file:${packedTarball()}` },
  }, null, 2));
  execFileSync('npm', ['install', '--legacy-peer-deps', '--no-package-lock'], { cwd: dir, env, stdio: ['ignore', 'ignore', 'pipe'] });
  return dir;
}
