// Progress on stderr for first unpacks that take a while: nothing for quick
// ones, a live line on a terminal, periodic plain lines in CI or pipes.
const QUIET_FOR_MS = 1500;

export interface Progress {
  update(bytes: number): void;
  done(): void;
}

export function startProgress(reference: string, totalBytes: number, enabled: boolean, activity = 'unpacking'): Progress {
  if (!enabled || process.env.VITEST_CONTAINER_PROGRESS === '0') return { update() {}, done() {} };
  const tty = Boolean(process.stderr.isTTY) && !process.env.CI;
  const every = tty ? 200 : 5000;
  const started = Date.now();
  let bytes = 0;
  let printed = false;
  const line = (): string => {
    const mb = (n: number): string => (n / 1e6).toFixed(1);
    const pct = totalBytes ? ` ${Math.min(100, Math.floor((bytes / totalBytes) * 100))}%` : '';
    return `vitest-environment-container: ${activity} ${reference}${pct} (${mb(bytes)}/${mb(totalBytes)} MB, ${((Date.now() - started) / 1000).toFixed(0)} s)`;
  };
  const print = (): void => {
    printed = true;
    process.stderr.write(tty ? `\r\x1b[K${line()}` : `${line()}\n`);
  };
  let timer: NodeJS.Timeout | undefined;
  const first = setTimeout(() => {
    print();
    timer = setInterval(print, every);
    timer.unref();
  }, QUIET_FOR_MS);
  first.unref();
  return {
    update(n: number) {
      bytes = n;
    },
    done() {
      clearTimeout(first);
      if (timer) clearInterval(timer);
      if (printed) {
        bytes = totalBytes;
        process.stderr.write(tty ? `\r\x1b[K${line()} done\n` : `${line()} done\n`);
      }
    },
  };
}
