// The packed package in projects as users have them, installed from the registry next to it:
// Jest 30 with CommonJS tests (Jest's default) and with ES module tests, Vitest 4.1 and 5.
// No C compiler on PATH (see packed-project.ts).
import { hostname } from 'node:os';
import { describe, expect, test } from 'vitest';
import { isRoot } from '../helpers/host.ts';
import { leftoverCgroups } from '../helpers/run-fixture.ts';
import { FIXTURE_DEPENDENCIES, packedProject, pnpm, type Manager } from '../helpers/packed-project.ts';

const JEST = FIXTURE_DEPENDENCIES.jest;

/** Options every sandbox of a fixture gets: its run's cgroup parent, so that nothing left behind goes unseen. */
const CGROUP_PARENT = `...(process.env.VTC_CGROUP_PARENT ? { cgroupParent: process.env.VTC_CGROUP_PARENT } : {})`;

/**
 * One Jest test file, in either module system: the API inside tests (withContainer and
 * startContainer, each a sandbox of its own beside the file's), and a sandbox it starts and
 * never stops (the file's end stops it). Prints the hostnames it saw.
 */
function jestTest(load: string, name: string): string {
  return `${load}
const opts = { image: 'host', memory: '64m', ${CGROUP_PARENT} };
const host = async (c) => (await c.exec(['hostname'])).stdout.trim();

test('${name}: withContainer and startContainer inside a test', async () => {
  const inside = await withContainer(opts, host);
  const started = await startContainer(opts);
  const second = await host(started);
  await started.stop();
  const file = await host(container);
  console.log('hostnames ' + JSON.stringify([file, inside, second]));
  expect(new Set([file, inside, second]).size).toBe(3);
});

test('${name}: a sandbox the test forgets', async () => {
  const forgotten = await startContainer(opts);
  expect((await forgotten.exec(['true'])).exitCode).toBe(0);
});
`;
}

function jestConfig(esm: boolean): string {
  const body = `{ testEnvironment: 'vitest-environment-container/jest', testEnvironmentOptions: { memory: '64m', ${CGROUP_PARENT} } }`;
  return esm ? `export default ${body};\n` : `module.exports = ${body};\n`;
}

/** The hostnames each file's test printed: all different from each other and from the host's. */
function hostnamesSeen(output: string): string[] {
  return [...output.matchAll(/hostnames (\[.*\])/g)].flatMap((m) => JSON.parse(m[1]!) as string[]);
}

describe.runIf(isRoot)('Jest 30, from the tarball', () => {
  test.for<Manager>(['npm', 'pnpm'])('CommonJS tests (Jest\'s default) require() the API and use it inside tests (%s)', async (manager, { skip }) => {
    if (manager === 'pnpm' && !(await pnpm())) return skip('pnpm 10 could not be installed');
    const p = await packedProject({
      manager, dependencies: JEST,
      files: {
        'jest.config.js': jestConfig(false),
        'a.test.js': jestTest("const { container, startContainer, withContainer } = require('vitest-environment-container');", 'a'),
        'b.test.js': jestTest("const { container, startContainer, withContainer } = require('vitest-environment-container');", 'b'),
      },
    });
    const r = await p.node(['node_modules/jest/bin/jest.js', '--maxWorkers=1']);
    expect(r.output).toMatch(/Tests:\s+4 passed, 4 total/);
    expect(r.code, r.output).toBe(0);
    const names = hostnamesSeen(r.output);
    expect(new Set([...names, hostname()]).size).toBe(7);
    // The forgotten sandboxes were stopped with their files: no cgroup of the run is left.
    expect(leftoverCgroups(r.cgroupParent)).toEqual([]);
  }, 600_000);

  test('ES module tests import the API and use it inside tests (sandbox ids do not repeat across realms)', async () => {
    const p = await packedProject({
      manager: 'npm', dependencies: JEST, packageJson: { type: 'module' },
      files: {
        'jest.config.js': jestConfig(true),
        'a.test.js': jestTest("import { container, startContainer, withContainer } from 'vitest-environment-container';", 'a'),
        'b.test.js': jestTest("import { container, startContainer, withContainer } from 'vitest-environment-container';", 'b'),
      },
    });
    // One worker: both files' realms, and the environment's, in one process.
    const r = await p.node(['node_modules/jest/bin/jest.js', '--maxWorkers=1'], { NODE_OPTIONS: '--experimental-vm-modules --no-warnings' });
    expect(r.output).not.toMatch(/EEXIST/);
    expect(r.output).toMatch(/Tests:\s+4 passed, 4 total/);
    expect(r.code, r.output).toBe(0);
    expect(new Set([...hostnamesSeen(r.output), hostname()]).size).toBe(7);
    expect(leftoverCgroups(r.cgroupParent)).toEqual([]);
  }, 600_000);
});

describe.runIf(isRoot).each<[string, Manager, Record<string, string>]>([
  ['4.1', 'npm', FIXTURE_DEPENDENCIES.vitest4],
  ['5', 'npm', FIXTURE_DEPENDENCIES.vitest5],
  ['5', 'pnpm', FIXTURE_DEPENDENCIES.vitest5],
])('Vitest %s, from the tarball, installed with %s', (_name, manager, dependencies) => {
  test("a test file runs under environment: 'container'", async ({ skip }) => {
    if (manager === 'pnpm' && !(await pnpm())) return skip('pnpm 10 could not be installed');
    const p = await packedProject({
      manager, dependencies, packageJson: { type: 'module' },
      files: {
        'vitest.config.js': `import { defineConfig } from 'vitest/config';
export default defineConfig({ test: { environment: 'container', environmentOptions: { container: { memory: '64m', ${CGROUP_PARENT} } } } });
`,
        'sandbox.test.js': `import { expect, test } from 'vitest';
import { container } from 'vitest-environment-container';
import { hostname } from 'node:os';
test('the file has a sandbox of its own', async () => {
  const r = await container.exec(['hostname']);
  expect(r.stdout.trim()).not.toBe(hostname());
  expect((await container.stats()).memory.limitBytes).toBe(64 * 1024 * 1024);
});
`,
      },
    });
    const r = await p.node(['node_modules/vitest/vitest.mjs', 'run']);
    expect(r.output).toMatch(/Tests\s+1 passed \(1\)/);
    expect(r.code, r.output).toBe(0);
    expect(leftoverCgroups(r.cgroupParent)).toEqual([]);
  }, 600_000);
});
