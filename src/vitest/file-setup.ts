// Vitest's setup file for the environment: runs in each test file's context before the
// file itself. It imports nothing (an import costs a round trip to Vitest's main process):
// it calls the file's sandbox handle, which the environment put on globalThis.
// setup-stub.ts writes the same text outside node_modules for isolate: false.
await (globalThis as Record<symbol, { fileSetup?: () => Promise<void> } | undefined>)[Symbol.for('vitest-environment-container')]?.fileSetup?.();
export {};
