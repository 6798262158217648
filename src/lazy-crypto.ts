// node:crypto costs a test worker 7-9 ms of CPU to load, and the environment's own path never
// hashes: only seeding and Jest's resource reports do. So it is loaded on first use.
import type { Hash } from 'node:crypto';

export function createHash(algorithm: string): Hash {
  return (process.getBuiltinModule('node:crypto') as typeof import('node:crypto')).createHash(algorithm);
}
