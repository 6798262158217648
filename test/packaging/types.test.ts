// The types users get from the packed package, checked by TypeScript in projects that installed
// it: Vitest 4.1 and 5 configs (environmentOptions.container), Jest's config and its tests'
// global `container`, and the CommonJS build's types for require(). Each case is one file
// compiled alone: a correct one passes, a typo fails naming the option. Each with TypeScript 5
// (the project's) and 7 (this repository's).
import { join } from 'node:path';
import { describe, expect, test } from 'vitest';
import { FIXTURE_DEPENDENCIES, packedProject, type PackedProject } from '../helpers/packed-project.ts';

const COMPILERS = {
  'TypeScript 5': 'node_modules/typescript/bin/tsc',
  'TypeScript 7': join(import.meta.dirname, '..', '..', 'node_modules', 'typescript', 'bin', 'tsc'),
};

/** A tsconfig per file, as a project would have: strict, Node's module resolution, Node's types. */
function tsconfigs(files: string[]): Record<string, string> {
  return Object.fromEntries(files.map((file) => [`tsconfig.${file}.json`, JSON.stringify({
    compilerOptions: {
      target: 'es2023', lib: ['es2023', 'esnext.disposable'], module: 'nodenext', moduleResolution: 'nodenext',
      strict: true, noEmit: true, skipLibCheck: true, types: ['node'],
    },
    files: [file],
  })]));
}

/** The file compiled by each compiler: passed by all, or by none (with every compiler's messages). */
async function typecheck(p: PackedProject, file: string): Promise<{ ok: boolean; output: string }> {
  const results = await Promise.all(Object.entries(COMPILERS).map(async ([name, tsc]) => {
    const r = await p.node([tsc, '-p', `tsconfig.${file}.json`]);
    return { name, ok: r.code === 0, output: r.output };
  }));
  const verdicts = new Set(results.map((r) => r.ok));
  if (verdicts.size > 1) throw new Error(`the compilers disagree on ${file}:\n${results.map((r) => `${r.name}: ${r.ok ? 'ok' : r.output}`).join('\n')}`);
  return { ok: results[0]!.ok, output: results.map((r) => r.output).join('') };
}

const vitestConfig = (container: string) => `/// <reference types="vitest-environment-container" />
import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    environment: 'container',
    environmentOptions: { container: ${container} },
  },
});
`;

const VITEST_FILES = {
  'good.config.ts': vitestConfig(`{ image: './images/redis', memory: '256m', cpus: 1, ports: [6379], waitFor: { port: 6379 }, network: 'backend' }`),
  'typo.config.ts': vitestConfig(`{ image: './images/redis', memroy: '256m' }`),
  'wrong-type.config.ts': vitestConfig(`{ image: './images/redis', cpus: 'one' }`),
  // Options travel to the worker as JSON: a Network object has no place in a config.
  'object-network.config.ts': `${vitestConfig(`{ network: {} as import('vitest-environment-container').Network }`)}`,
};

describe.each([
  ['4.1', FIXTURE_DEPENDENCIES.vitest4],
  ['5', FIXTURE_DEPENDENCIES.vitest5],
])('Vitest %s: environmentOptions.container in vitest.config.ts', (_name, dependencies) => {
  const project = () => packedProject({ manager: 'npm', dependencies, packageJson: { type: 'module' }, files: { ...VITEST_FILES, ...tsconfigs(Object.keys(VITEST_FILES)) } });

  test('type-checked: correct options pass; a misspelt option, a wrong type and a Network object fail, named', async () => {
    const p = await project();
    const good = await typecheck(p, 'good.config.ts');
    expect(good.output).toBe('');
    expect(good.ok).toBe(true);
    const typo = await typecheck(p, 'typo.config.ts');
    expect(typo.ok).toBe(false);
    expect(typo.output).toMatch(/typo\.config\.ts[\s\S]*'memroy' does not exist/);
    const wrong = await typecheck(p, 'wrong-type.config.ts');
    expect(wrong.ok).toBe(false);
    expect(wrong.output).toMatch(/wrong-type\.config\.ts[\s\S]*Type 'string' is not assignable to type 'number'/);
    const network = await typecheck(p, 'object-network.config.ts');
    expect(network.ok).toBe(false);
    expect(network.output).toMatch(/object-network\.config\.ts[\s\S]*'Network' is not assignable to type 'string'/);
  }, 600_000);
});

const jestConfig = (options: string) => `import type { JestEnvironmentOptions } from 'vitest-environment-container/jest';

const testEnvironmentOptions: JestEnvironmentOptions = ${options};
export default { testEnvironment: 'vitest-environment-container/jest', testEnvironmentOptions };
`;

const JEST_FILES = {
  'jest-good.config.ts': jestConfig(`{ image: './images/redis', memory: '256m', customExportConditions: ['node'], globalsCleanup: 'on' }`),
  'jest-typo.config.ts': jestConfig(`{ image: './images/redis', memroy: '256m' }`),
  'global.test.ts': `/// <reference types="vitest-environment-container/jest" />
export async function check(): Promise<number> {
  const { exitCode } = await container.exec(['redis-cli', 'ping']);
  return exitCode + container.endpoint(6379).port;
}
`,
  'global-typo.test.ts': `/// <reference types="vitest-environment-container/jest" />
export const r = container.exce(['true']);
`,
  // A CommonJS file: require() resolves to the CommonJS build and its .d.cts types.
  'require.cts': `import vtc = require('vitest-environment-container');
export const done: Promise<number> = vtc.withContainer({ image: 'host', memory: '64m' }, async (c) => (await c.exec(['true'])).exitCode);
`,
  'require-typo.cts': `import vtc = require('vitest-environment-container');
export const done = vtc.withContainer({ imgae: 'host' }, async () => 0);
`,
};

describe('Jest: testEnvironmentOptions, the global container, require()', () => {
  test('typed: correct code passes; typos fail, named', async () => {
    const p = await packedProject({ manager: 'npm', dependencies: FIXTURE_DEPENDENCIES.jest, files: { ...JEST_FILES, ...tsconfigs(Object.keys(JEST_FILES)) } });
    for (const file of ['jest-good.config.ts', 'global.test.ts', 'require.cts']) {
      const r = await typecheck(p, file);
      expect(r.output, file).toBe('');
      expect(r.ok).toBe(true);
    }
    const expected: Record<string, RegExp> = {
      'jest-typo.config.ts': /'memroy' does not exist/,
      'global-typo.test.ts': /Property 'exce' does not exist/,
      'require-typo.cts': /'imgae' does not exist/,
    };
    for (const [file, message] of Object.entries(expected)) {
      const r = await typecheck(p, file);
      expect(r.ok, file).toBe(false);
      expect(r.output).toMatch(new RegExp(`${file.replaceAll('.', '\\.')}[\\s\\S]*${message.source}`));
    }
  }, 600_000);
});
