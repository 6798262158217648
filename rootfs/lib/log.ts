// Progress lines for people (short, one per step, silenced with setQuiet) and
// details for debugging through `debug` (DEBUG=container:rootfs).
import createDebug from 'debug';

export const debug = createDebug('container:rootfs');

let quiet = false;
export function setQuiet(value: boolean): void {
  quiet = value;
}

export function log(line: string): void {
  debug(line);
  if (!quiet) process.stdout.write(`${line}\n`);
}

/** A failed image build; `code` is stable, the message says what to do. */
export class RootfsError extends Error {
  readonly code: string;
  readonly fix: string | undefined;
  constructor(code: string, message: string, details: { fix?: string; cause?: unknown } = {}) {
    super(details.fix ? `${message}\n  fix: ${details.fix}` : message, { cause: details.cause });
    this.name = new.target.name;
    this.code = code;
    this.fix = details.fix;
  }
}
