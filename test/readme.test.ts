// README.md's code runs as written: every ```ts / ```js block starts with a comment naming
// its file (`// vitest.config.ts — ...`); the blocks are written to fresh projects (the
// Jest section's to a Jest project, the rest to a Vitest one, both with images/redis and
// images/postgres) and run through Vitest's and Jest's CLIs, and the command-line examples
// that start a sandbox run too. A snippet that stops working fails here.
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { ensureImages, imagePath } from '../examples/shared/ensure-images.ts';
import { isRoot } from './helpers/host.ts';
import { jestRequireEnv, run } from './helpers/run-fixture.ts';

const repo = resolve(import.meta.dirname, '..');
const readme = readFileSync(join(repo, 'README.md'), 'utf8');

interface Snippet { section: string; lang: string; file: string | undefined; code: string }

/** The fenced code blocks, with the heading they are under and the file their first line names. */
function snippets(): Snippet[] {
  const found: Snippet[] = [];
  let section = '';
  const lines = readme.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const heading = /^#+ (.*)/.exec(lines[i]!);
    if (heading) section = heading[1]!;
    const fence = /^```(\w+)$/.exec(lines[i]!);
    if (!fence) continue;
    const body: string[] = [];
    for (i++; i < lines.length && lines[i] !== '```'; i++) body.push(lines[i]!);
    const file = /^\/\/ ([\w./-]+\.(?:ts|js|cjs|mjs))(?:\s|$)/.exec(body[0] ?? '')?.[1];
    found.push({ section, lang: fence[1]!, file, code: `${body.join('\n')}\n` });
  }
  return found;
}

const all = snippets();
const code = all.filter((s) => s.lang === 'ts' || s.lang === 'js');
const work = mkdtempSync(join(tmpdir(), 'vtc-readme-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

function project(name: string, files: Snippet[], modules: string[], type?: 'module'): string {
  const dir = join(work, name);
  mkdirSync(join(dir, 'node_modules'), { recursive: true });
  mkdirSync(join(dir, 'images'));
  for (const m of modules) symlinkSync(m === 'vitest-environment-container' ? repo : join(repo, 'node_modules', m), join(dir, 'node_modules', m));
  for (const image of ['redis', 'postgres']) symlinkSync(imagePath(image), join(dir, 'images', image));
  writeFileSync(join(dir, 'package.json'), JSON.stringify({ name, private: true, ...(type ? { type } : {}) }));
  for (const s of files) {
    mkdirSync(dirname(join(dir, s.file!)), { recursive: true });
    writeFileSync(join(dir, s.file!), s.code);
  }
  return dir;
}

test('every ts/js block of README.md names the file it is, so that it can be run', () => {
  expect(code.length).toBeGreaterThanOrEqual(6);
  expect(code.filter((s) => !s.file).map((s) => `${s.section}: ${s.code.split('\n')[0]}`)).toEqual([]);
});

describe.runIf(isRoot)('README.md, run as written', { timeout: 600_000 }, () => {
  let vitestProject: string;
  let jestProject: string;
  beforeAll(() => {
    ensureImages(['redis', 'postgres']);
    const jest = code.filter((s) => s.section === 'Jest');
    vitestProject = project('vitest', code.filter((s) => !jest.includes(s)), ['vitest', 'vitest-environment-container'], 'module');
    jestProject = project('jest', jest, ['jest', 'vitest-environment-container']);
  }, 600_000);

  // --testTimeout: the snippets' tests start Postgres, which takes longer than Vitest's default 5 s on a busy machine.
  const vitest = (args: string[]) => run(vitestProject, [join(repo, 'node_modules', 'vitest', 'vitest.mjs'), 'run', '--testTimeout=60000', ...args]);

  test('the Vitest snippets: config, a test file, networks', async () => {
    const r = await vitest([]);
    expect(r.output).toMatch(/Test Files\s+2 passed \(2\)/);
    expect(r.code, r.output).toBe(0);
  });

  test('the pool snippet, over the Vitest config', async () => {
    const r = await vitest(['--config', 'vitest.pool.config.ts']);
    expect(r.output).toMatch(/Test Files\s+2 passed \(2\)/);
    expect(r.code, r.output).toBe(0);
  });

  test('the Jest snippets', async () => {
    const r = await run(jestProject, [join(repo, 'node_modules', 'jest', 'bin', 'jest.js')], jestRequireEnv());
    expect(r.output).toMatch(/Tests:\s+1 passed, 1 total/);
    expect(r.code, r.output).toBe(0);
  });

  test('the command-line example that runs a command in a sandbox', () => {
    const line = all.filter((s) => s.lang === 'sh').flatMap((s) => s.code.split('\n')).find((l) => l.includes(' run ./images/redis -- '));
    expect(line).toBeDefined();
    const args = line!.replace(/#.*/, '').trim().split(/\s+/).slice(2); // drop `npx vitest-environment-container`
    const out = execFileSync(process.execPath, [join(repo, 'src', 'cli', 'main.ts'), ...args], { cwd: vitestProject, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
    expect(out.trim()).toBe('PONG');
  });
});
