// testEnvironment: 'vitest-environment-container/jest'. A thin adapter: Jest builds
// one environment per test file, knows the file, and has already merged the file's
// @jest-environment-options over testEnvironmentOptions; the file's sandbox and its
// teardown order live in src/session/, shared with Vitest's adapters.
import type { EnvironmentContext, JestEnvironmentConfig } from '@jest/environment';
import { TestEnvironment } from 'jest-environment-node';
import { containerProxy, FILE_SANDBOX } from '../current.ts';
import { assertSupportedNode } from '../node-version.ts';
import type { ContainerOptions } from '../runtime/options.ts';
import { FileSandbox } from '../session/file-sandbox.ts';
import { shareRegistries } from '../session/realm.ts';

// testEnvironmentOptions keys that belong to jest-environment-node, not to the container.
const JEST_KEYS = new Set(['customExportConditions', 'globalsCleanup']);

export default class ContainerEnvironment extends TestEnvironment {
  readonly #sandbox = new FileSandbox();
  readonly #options: ContainerOptions;
  readonly #testPath: string;

  constructor(config: JestEnvironmentConfig, context: EnvironmentContext) {
    assertSupportedNode();
    super(config, context);
    this.#testPath = context.testPath;
    this.#options = Object.fromEntries(Object.entries(config.projectConfig.testEnvironmentOptions).filter(([k]) => !JEST_KEYS.has(k))) as ContainerOptions;
    this.#sandbox.setRoot(config.projectConfig.rootDir);
  }

  override async setup(): Promise<void> {
    await super.setup();
    const global = this.global as unknown as Record<PropertyKey, unknown>;
    // The test's own copy of this package (import or require in a test) uses our registries:
    // withContainer/startContainer work in tests, and what they leave running stops with the file.
    shareRegistries(global);
    global[FILE_SANDBOX] = this.#sandbox;
    await this.#sandbox.start(this.#options, this.#testPath);
    // Test code in Jest reaches it as the global `container` (the same typed object as Vitest's import).
    // Set once started: Jest walks the values put on its global.
    global.container = containerProxy(() => this.#sandbox);
  }

  override async teardown(): Promise<void> {
    const global = this.global as unknown as Record<PropertyKey, unknown> | null;
    if (global) {
      delete global.container;
      delete global[FILE_SANDBOX];
    }
    try {
      await this.#sandbox.finish(this.#testPath);
    } finally {
      await this.#sandbox.teardown();
      await super.teardown();
    }
  }
}
