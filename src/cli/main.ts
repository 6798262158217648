#!/usr/bin/env node
// npx vitest-environment-container <command>: doctor, run, images, pull.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { assertSupportedNode } from '../node-version.ts';
import { packageRoot } from '../path.ts';
import { doctor, doctorHelp } from './doctor/command.ts';
import { images, imagesHelp } from './images.ts';
import { out, reportError, UsageError } from './output.ts';
import { pull, pullHelp } from './pull.ts';
import { run, runHelp } from './run.ts';

interface Command {
  help: string;
  main: (argv: string[]) => Promise<number>;
}

const commands: Record<string, Command> = {
  doctor: { help: doctorHelp, main: doctor },
  run: { help: runHelp, main: run },
  images: { help: imagesHelp, main: images },
  pull: { help: pullHelp, main: pull },
};

const usage = `Usage: vitest-environment-container <command> [options]

Commands:
  doctor    check what this host supports for sandboxes, and how to fix what it lacks
  run       a shell (or a command) in the same sandbox a test would get, for debugging
  images    list or prune the image layer cache
  pull      fetch an image from a registry (redis:7) or the Docker/podman daemon into the cache

Options:
  -h, --help     help (also: <command> --help)
  -V, --version  the version

Logs: DEBUG=container:* shows what the runtime does.`;

function version(): string {
  const pkg = JSON.parse(readFileSync(join(packageRoot(), 'package.json'), 'utf8')) as { version: string };
  return pkg.version;
}

async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined || name === '-h' || name === '--help' || name === 'help') {
    out(usage);
    return name === undefined ? 2 : 0;
  }
  if (name === '-V' || name === '--version') {
    out(version());
    return 0;
  }
  const command = commands[name];
  if (!command) throw new UsageError(`unknown command "${name}"`);
  // doctor reports it as one of its checks; the others cannot work on an older Node.
  if (name !== 'doctor') assertSupportedNode();
  // Help is asked for before `--`; after it, -h belongs to the command run in the sandbox.
  const own = rest.includes('--') ? rest.slice(0, rest.indexOf('--')) : rest;
  if (own.includes('-h') || own.includes('--help')) {
    out(command.help);
    return 0;
  }
  return command.main(rest);
}

// A reader that stopped reading (`doctor | head -1`) is no error of ours: end quietly, as shell tools do.
process.stdout.on('error', (err: NodeJS.ErrnoException) => {
  if (err.code !== 'EPIPE') throw err;
  process.exit(0);
});

try {
  process.exitCode = await main(process.argv.slice(2));
} catch (err) {
  // parseArgs reports unknown or malformed flags with these codes.
  const code = (err as NodeJS.ErrnoException).code ?? '';
  process.exitCode = reportError(code.startsWith('ERR_PARSE_ARGS') ? new UsageError((err as Error).message) : err);
}
