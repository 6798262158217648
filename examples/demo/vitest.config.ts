// The demo suite: `npm run demo` from the repository root.
import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: { include: ['*.test.ts'], root: import.meta.dirname, testTimeout: 30_000 },
});
