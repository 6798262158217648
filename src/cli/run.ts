// `run IMAGE [-- CMD...]`: the sandbox a test would get, with a shell (or a
// command) wired to this terminal, for debugging. Torn down on exit or Ctrl-C.
import { constants } from 'node:os';
import { setTimeout as sleep } from 'node:timers/promises';
import { parseArgs } from 'node:util';
import { SandboxError, startContainer, type Container } from '../runtime/index.ts';
import { waitUntilReady, type WaitFor } from '../runtime/wait.ts';
import { exposedPorts } from '../net/ports.ts';
import { logger } from '../log.ts';
import { containerFlags, containerFlagsHelp, containerOptions, waitFlags, waitFlagsHelp, waitOptions } from './container-flags.ts';
import { note, UsageError } from './output.ts';

const log = logger('cli');

export const runHelp = `Usage: vitest-environment-container run IMAGE [sandbox options] [--idle] [-- CMD [ARGS...]]

Starts the sandbox a test with these options would get (the image's own
Entrypoint/Cmd runs as its main process, ports are forwarded to 127.0.0.1),
waits until it is ready (by default: every port the image exposes listens),
and runs CMD in it with this terminal's stdin, stdout and stderr: by default a
shell, sh (sh -i when stdin is a terminal). Exits with CMD's exit code.
Ctrl-C, end of input or the end of CMD stops the sandbox and removes it.

There is no pseudo-terminal: the shell reads plain lines (no line editing,
no job control, no full-screen programs). Pipes work: echo 'id; ls /' | ... run host

IMAGE: host (the host's root file system, read-only, under a throwaway layer),
a local OCI image layout or image tar (./images/redis), or rootfs:/dir.

Options:
  --idle               run an idle main process (sleep infinity) instead of the image's Entrypoint/Cmd
${waitFlagsHelp}
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

/** Runs the command with this process's stdin, stdout and stderr; resolves to its exit code. */
async function attach(container: Container, command: string[]): Promise<number> {
  const proc = await container.spawn(command);
  process.stdin.pipe(proc.stdin);
  proc.stdout.pipe(process.stdout, { end: false });
  proc.stderr.pipe(process.stderr, { end: false });
  try {
    return await proc.exited;
  } finally {
    process.stdin.unpipe(proc.stdin);
    process.stdin.destroy(); // a terminal's stdin would otherwise keep us waiting for input nobody needs
  }
}

function formatMiB(bytes: number): string {
  return `${Math.round(bytes / 1024 / 1024)} MiB`;
}

/** Says so when the kernel killed something in the sandbox for memory (a bare 137 says nothing). */
async function reportOutOfMemory(container: Container, code: number): Promise<void> {
  const stats = await container.stats().catch(() => undefined);
  const kills = stats?.oomKills ?? 0;
  if (!kills) return;
  const limit = container.options.memoryBytes;
  note(`out of memory: the kernel killed ${kills === 1 ? 'a process' : `${kills} processes`} in the sandbox for exceeding its memory limit${limit ? ` of ${formatMiB(limit)}` : ''}` +
    `${code === 137 ? ' (the command, which exited with 137 = killed)' : ''}; raise it with --memory`);
}

/** Waits for what the command needs: the waits asked for, or every port the image exposes. */
async function waitUntilUsable(container: Container, asked: WaitFor[] | undefined, idle: boolean): Promise<void> {
  const waits = asked ?? (idle ? [] : exposedPorts(container.image.config.ExposedPorts).map((port) => ({ port })));
  if (!waits.length) return;
  note(`waiting for ${waits.map((w) => ('port' in w ? `port ${w.port}` : 'log' in w ? `log ${String(w.log)}` : JSON.stringify(w))).join(', ')} (up to ${container.options.timeout / 1000} s)`);
  await waitUntilReady(container, waits, container.options.timeout);
}

/** Images whose Cmd is a shell (busybox) end at once with no input: say so, and how to keep the sandbox up. */
async function mainProcessEnded(container: Container): Promise<SandboxError> {
  const exit = await container.wait();
  const output = container.logs().trim().slice(-500);
  const why = exit.oomKilled ? `killed for exceeding the memory limit${container.options.memoryBytes ? ` of ${formatMiB(container.options.memoryBytes)}` : ''}` : `exit ${exit.exitCode}`;
  return new SandboxError('MAIN_PROCESS_EXITED', `the image's main process ended (${why}) before the command could start, and the sandbox with it${output ? `; its output: ${output}` : ''}`,
    { fix: 'add --idle to run an idle main process instead of the image\'s Entrypoint/Cmd' });
}

export async function run(argv: string[]): Promise<number> {
  const { own, cmd } = splitCommand(argv);
  const { values, positionals } = parseArgs({ args: own, strict: true, allowPositionals: true, options: { ...containerFlags, ...waitFlags, idle: { type: 'boolean' } } });
  if (positionals.length !== 1) {
    throw new UsageError(positionals.length ? `one IMAGE only (got ${positionals.join(' ')}); put the command after --` : 'which image? e.g. run host, or run ./images/redis');
  }
  const options = containerOptions(values, positionals[0]);
  if (values.idle) options.entrypoint = ['sleep', 'infinity'];
  const { waitFor, timeout } = waitOptions(values);
  if (timeout !== undefined) options.timeout = timeout;
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
    await waitUntilUsable(container, waitFor, Boolean(values.idle));
    if (interactive) note('no pseudo-terminal: plain lines only; Ctrl-D or exit ends the session, Ctrl-C stops the sandbox');
    const code = await attach(container, command).catch(async (err: unknown) => {
      // An exec fails the moment pid 1 is gone; the container learns of it just after.
      await Promise.race([container.wait(), sleep(1000)]);
      throw container.running ? err : await mainProcessEnded(container);
    });
    if (!signalled) await reportOutOfMemory(container, code);
    return signalled ? 128 + constants.signals[signalled] : code; // as a shell reports a death by signal
  } finally {
    await teardown();
    for (const s of signals) process.off(s, onSignal);
    note(`sandbox ${container.id} removed`);
  }
}
