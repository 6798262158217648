// One line of doctor's report. 'warn' is something that works, but not fully
// (e.g. no limits without cgroup delegation); only 'fail' makes doctor exit non-zero.
import type { ContainerError } from '../../errors.ts';
import type { ContainerOptions } from '../../runtime/options.ts';

export type Status = 'ok' | 'warn' | 'fail';

export interface CheckResult {
  id: string;
  title: string;
  status: Status;
  /** What works or what does not, in one line. */
  summary: string;
  /** The runtime's error code for the same failure, when there is one. */
  code?: string;
  /** The exact command (or change) that fixes it. */
  fix?: string;
}

export interface DoctorContext {
  rootless: boolean;
  userName: string;
  /** The sandbox options to check, from the command line. */
  options: ContainerOptions;
  cacheDir: string;
}

/** A runtime error as a report line: the runtime and doctor say the same thing. */
export function fromError(id: string, title: string, status: Status, err: ContainerError, prefix = ''): CheckResult {
  const message = err.fix ? err.message.slice(0, err.message.lastIndexOf('\n  fix: ')) : err.message;
  return { id, title, status, summary: prefix + message, code: err.code, ...(err.fix ? { fix: err.fix } : {}) };
}
