// The sandbox service's wire format: one JSON object per line over a unix socket (read with
// runtime/events.ts's onJsonLines).
// A test worker sends requests ({ id, op, ... }); the service answers each with
// { re: id, value } or { re: id, error }, and pushes what a mirrored sandbox's
// monitor says ({ push, sandbox, ... }). Kept small and free of runtime imports:
// the test worker's side of it is loaded for every test file.
import * as errors from '../errors.ts';
import type { ContainerError } from '../errors.ts';
import type { RuntimeImage } from '../runtime/image.ts';
import type { RuntimeEvent } from '../runtime/events.ts';

/** What a worker needs to mirror a sandbox the service started (see mirror.ts). */
export interface SandboxDescription {
  id: string;
  hostname: string;
  runDir: string;
  runRoot: string;
  cgroupPath: string | undefined;
  // Not the spec (~15 KB with its seccomp profile): a mirror reads it from the bundle (runDir), where
  // the runtime read it, and most files never make one.
  rootless: boolean;
  image: Omit<RuntimeImage, 'resolveUser'>;
  /** The monitor's events so far (created, ports, started) and the log: the mirror starts from them. */
  events: RuntimeEvent[];
  log: string;
  /** Bytes the sandbox has logged in all (the relay goes on from there). */
  logTotal: number;
}

export interface SerializedError {
  name: string;
  code?: string;
  message: string;
  fix?: string;
  exitCode?: number;
}

/** The message as the service's caller would have seen it thrown in its own process. */
export function serializeError(err: unknown): SerializedError {
  if (!(err instanceof Error)) return { name: 'Error', message: String(err) };
  const e = err as Partial<ContainerError> & { exitCode?: number };
  // ContainerError appends the fix to its message; it is sent apart and appended again on the other side.
  const message = e.fix && err.message.endsWith(`\n  fix: ${e.fix}`) ? err.message.slice(0, -`\n  fix: ${e.fix}`.length) : err.message;
  return { name: err.name, message, ...(e.code ? { code: e.code } : {}), ...(e.fix ? { fix: e.fix } : {}), ...(typeof e.exitCode === 'number' ? { exitCode: e.exitCode } : {}) };
}

type ErrorClass = new (code: string, message: string, ...rest: unknown[]) => Error;

/** The same error class again (this package's own, by name), with its code, fix and exit code. */
export function deserializeError(e: SerializedError): Error {
  const Class = (errors as Record<string, unknown>)[e.name] as ErrorClass | undefined;
  if (!e.code || typeof Class !== 'function' || !(Class === (errors.ContainerError as unknown) || Class.prototype instanceof errors.ContainerError)) {
    const plain = new Error(e.message);
    plain.name = e.name;
    return plain;
  }
  const details = e.fix ? { fix: e.fix } : {};
  // The classes with an exit code (CommandError, ContainerExitedError) take it before the details.
  return e.exitCode === undefined ? new Class(e.code, e.message, details) : new Class(e.code, e.message, e.exitCode, details);
}

/** Whether a value crosses the socket unchanged (no RegExp, function, Buffer, class instance). */
export function isPlainData(value: unknown): boolean {
  if (value === null || typeof value === 'string' || typeof value === 'boolean') return true;
  if (typeof value === 'number') return Number.isFinite(value);
  if (value === undefined) return true;
  if (Array.isArray(value)) return value.every(isPlainData);
  if (typeof value !== 'object') return false;
  const proto = Object.getPrototypeOf(value) as unknown;
  return (proto === Object.prototype || proto === null) && Object.values(value as object).every(isPlainData);
}
