// examples/isolation's config, plus the demo's setup file that records each pool worker's resources.
import { resolve } from 'node:path';
import { mergeConfig } from 'vitest/config';
import base from '../isolation/vitest.config.ts';

export default mergeConfig(base, { test: { setupFiles: [resolve(import.meta.dirname, 'pool-resources.ts')] } });
