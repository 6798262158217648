// `run IMAGE [-- CMD...]`: the sandbox a test would get, with a shell (or a
// command) wired to this terminal, for debugging. Torn down on exit or Ctrl-C.
import { parseArgs } from 'node:util';
import { startContainer, type Container } from '../runtime/index.ts';
import { logger } from '../log.ts';
import { containerFlags, containerFlagsHelp, containerOptions } from './container-flags.ts';
import { note, UsageError } from './output.ts';

const log = logger('cli');

export const runHelp = `Usage: vitest-environment-container run IMAGE [sandbox options] [--idle] [-- CMD [ARGS...]]

Starts the sandbox a test with these options would get (the image's own
Entrypoint/Cmd runs as its main process, ports are forwarded to 127.0.0.1) and
runs CMD in it with this terminal's stdin, stdout and stderr: by default a
shell, sh (sh -i when stdin is a terminal). Exits with CMD's exit code.
Ctrl-C, end of input or the end of CMD stops the sandbox and removes it.

There is no pseudo-terminal: the shell reads plain lines (no line editing,
no job control, no full-screen programs). Pipes work: echo 'id; ls /' | ... run host

IMAGE: host (the host's root file system, read-only, under a throwaway layer),
a local OCI image layout or image tar (./images/redis), or rootfs:/dir.

Options:
  --idle               run an idle main process (sleep infinity) instead of the image's Entrypoint/Cmd
${containerFlagsHelp}

Examples:
  vitest-environment-container run host --memory 64m
  vitest-environment-container run ./images/redis -- redis-cli ping
  echo 'hostname; exit 3' | vitest-environment-container run host -- sh`;

/** Splits at the first `--`: our flags before it, the command to run after it. */
function splitCommand(argv: string[]): { own: string[]; cmd: string[] } {
  const dash = argv.indexOf('--');
  return dash < 0 ? { own: argv, cmd: [] } : { own: argv.slice(0, dash), cmd: argv.slice(dash + 1) };
}

function announce(container: Container): void {
  const ports = [...container.ports].map(([port, hostPort]) => `${port} → 127.0.0.1:${hostPort}`);
  note(`sandbox ${container.id} (image ${container.image.reference}) started${ports.length ? `; ports: ${ports.join(', ')}` : ''}`);
}

export async function run(argv: string[]): Promise<number> {
  const { own, cmd } = splitCommand(argv);
  const { values, positionals } = parseArgs({ args: own, strict: true, allowPositionals: true, options: { ...containerFlags, idle: { type: 'boolean' } } });
  if (positionals.length !== 1) {
    throw new UsageError(positionals.length ? `one IMAGE only (got ${positionals.join(' ')}); put the command after --` : 'which image? e.g. run host, or run ./images/redis');
  }
  const options = containerOptions(values, positionals[0]);
  if (values.idle) options.entrypoint = ['sleep', 'infinity'];
  const interactive = Boolean(process.stdin.isTTY);
  const command = cmd.length ? cmd : interactive ? ['sh', '-i'] : ['sh'];

  const container = await startContainer(options);
  let torndown: Promise<unknown> | undefined;
  const teardown = () => (torndown ??= container.stop());
  // Ctrl-C (and a closed terminal, or kill) must not leave the sandbox behind.
  const signals = ['SIGINT', 'SIGTERM', 'SIGHUP'] as const;
  let signalled: NodeJS.Signals | undefined;
  const onSignal = (signal: NodeJS.Signals) => {
    signalled = signal;
    log('%s: stopping %s', signal, container.id);
    void teardown();
  };
  for (const s of signals) process.on(s, onSignal);
  try {
    announce(container);
    if (!container.running) {
      const exit = await container.wait();
      throw new UsageError(`the image's main process ended at once (exit ${exit.exitCode}), and the sandbox with it; use --idle to keep it running without it`);
    }
    if (interactive) note('no pseudo-terminal: plain lines only; Ctrl-D or exit ends the session, Ctrl-C stops the sandbox');
    const proc = await container.spawn(command);
    process.stdin.pipe(proc.stdin);
    proc.stdout.pipe(process.stdout, { end: false });
    proc.stderr.pipe(process.stderr, { end: false });
    // If the sandbox goes first (main process ended, or Ctrl-C), the command goes with it.
    void container.wait().then((exit) => {
      if (!signalled && !container.stopRequested) note(`the sandbox's main process ended (exit ${exit.exitCode}); the sandbox is gone`);
    });
    const code = await proc.exited;
    process.stdin.unpipe(proc.stdin);
    process.stdin.destroy(); // a terminal's stdin would otherwise keep us waiting for input nobody needs
    return signalled ? 128 + (signalled === 'SIGINT' ? 2 : signalled === 'SIGTERM' ? 15 : 1) : code;
  } finally {
    await teardown();
    for (const s of signals) process.off(s, onSignal);
    note(`sandbox ${container.id} removed`);
  }
}
