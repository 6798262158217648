// Plain lines for people and scripts: colours only on a terminal, and never
// when NO_COLOR is set (https://no-color.org).
import { ContainerError } from '../errors.ts';

const useColor = (stream: NodeJS.WriteStream): boolean => Boolean(stream.isTTY) && process.env.NO_COLOR === undefined;

const codes = { red: 31, green: 32, yellow: 33, dim: 2, bold: 1 } as const;
export type Color = keyof typeof codes;

export function paint(text: string, color: Color, stream: NodeJS.WriteStream = process.stdout): string {
  return useColor(stream) ? `\x1b[${codes[color]}m${text}\x1b[0m` : text;
}

export function out(line = ''): void {
  process.stdout.write(`${line}\n`);
}

/** Status messages go to stderr so that stdout carries only what the command itself prints. */
export function note(line: string): void {
  process.stderr.write(`${paint(line, 'dim', process.stderr)}\n`);
}

/** A mistake in how the command was called: exit 2, as getopt-style tools do. */
export class UsageError extends Error {
  readonly exitCode = 2;
}

/** Prints an error (with its fix, when it has one) and returns the exit code to use. */
export function reportError(err: unknown): number {
  const prefix = paint('error:', 'red', process.stderr);
  if (err instanceof UsageError) {
    process.stderr.write(`${prefix} ${err.message}\n(see --help)\n`);
    return err.exitCode;
  }
  if (err instanceof ContainerError) {
    process.stderr.write(`${prefix} ${err.message} [${err.code}]\n`);
    return 1;
  }
  process.stderr.write(`${prefix} ${err instanceof Error ? err.stack ?? err.message : String(err)}\n`);
  return 1;
}
