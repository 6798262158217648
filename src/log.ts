// Logging goes through `debug`: DEBUG=container:* shows everything,
// DEBUG=container:runtime one layer. `debug` itself is loaded only when DEBUG
// is set: every test file's worker imports this package, and most never log.
import { createRequire } from 'node:module';
import type { Debugger } from 'debug';

export type Logger = (formatter: unknown, ...args: unknown[]) => void;

const noop: Logger = () => {};

export function logger(layer: string): Logger {
  if (!process.env.DEBUG) return noop;
  const createDebug = createRequire(import.meta.url)('debug') as (namespace: string) => Debugger;
  return createDebug(`container:${layer}`);
}
