// `doctor`: what this host supports for sandboxes, and how to fix what it lacks.
import { release, userInfo } from 'node:os';
import { parseArgs } from 'node:util';
import { ContainerError } from '../../errors.ts';
import { defaultCacheDir } from '../../image/index.ts';
import { logger } from '../../log.ts';
import { DEFAULT_CGROUP_PARENT } from '../../runtime/cgroups/types.ts';
import { hostInfo } from '../../runtime/host.ts';
import { normalizeOptions } from '../../runtime/options.ts';
import { containerFlags, containerFlagsHelp, containerOptions } from '../container-flags.ts';
import { out, paint } from '../output.ts';
import { checkCgroups } from './cgroups.ts';
import { checkConfinement } from './confinement.ts';
import { fromError, type CheckResult, type DoctorContext, type Status } from './check.ts';
import { checkIdMaps } from './id-maps.ts';
import { checkImageCache } from './image-cache.ts';
import { checkImageSource } from './image-source.ts';
import { checkNativeHelper } from './native-helper.ts';
import { checkNodeVersion } from './node-version.ts';
import { checkOverlay } from './overlay.ts';
import { checkSeccomp } from './seccomp.ts';
import { probeSandbox } from './sandbox-probe.ts';
import { checkUserNamespaces } from './user-namespaces.ts';

const log = logger('cli');

export const doctorHelp = `Usage: vitest-environment-container doctor [--json] [--image IMAGE] [sandbox options]

Checks what this host supports for sandboxes and prints one line per check:
the Node version, user namespaces, overlayfs, the seccomp filter in force, cgroups, subordinate ids, the native helper, the
image cache, the image's registry or daemon (reachable, credentials, the digest it points at),
and finally a real sandbox started with the given options.
Each problem comes with the command that fixes it.

Exit code: 0 when sandboxes with these options can run here, 1 when not.

Options:
  --json               print the results as JSON
  --image IMAGE        the image to probe with (default: host): a path, redis:7, docker-daemon:NAME, ...
  --cache-dir DIR      the image cache to check (default: $VITEST_CONTAINER_CACHE or ~/.cache/vitest-environment-container)
  --cgroup-parent PATH the cgroupParent option (default: ${DEFAULT_CGROUP_PARENT})
${containerFlagsHelp}`;

const MARKS: Record<Status, { mark: string; color: 'green' | 'yellow' | 'red' }> = {
  ok: { mark: '✓', color: 'green' },
  warn: { mark: '!', color: 'yellow' },
  fail: { mark: '✗', color: 'red' },
};

function print(result: CheckResult): void {
  const { mark, color } = MARKS[result.status];
  out(`${paint(mark, color)} ${paint(result.title, 'bold')}: ${result.summary}`);
  if (result.fix) out(`    fix: ${result.fix}`);
}

export async function doctor(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv, strict: true, allowPositionals: false,
    options: { ...containerFlags, json: { type: 'boolean' }, image: { type: 'string' }, 'cache-dir': { type: 'string' }, 'cgroup-parent': { type: 'string' } },
  });
  const options = containerOptions(values, values.image);
  if (values['cgroup-parent'] !== undefined) options.cgroupParent = values['cgroup-parent'];
  const rootless = hostInfo().rootless;
  const ctx: DoctorContext = { rootless, userName: userInfo().username, options, cacheDir: values['cache-dir'] ?? defaultCacheDir() };
  if (values['cache-dir'] !== undefined) process.env.VITEST_CONTAINER_CACHE = values['cache-dir']; // the sandbox probe's images go there too
  const emit = values.json ? () => {} : print;
  if (!values.json) out(`vitest-environment-container doctor: ${rootless ? `as ${ctx.userName} (rootless)` : 'as root'}, Linux ${release()}`);

  const results: CheckResult[] = [];
  const add = (r: CheckResult): CheckResult => {
    log('%s: %o', r.id, r);
    results.push(r);
    emit(r);
    return r;
  };

  try {
    normalizeOptions(options);
    add({ id: 'options', title: 'options', status: 'ok', summary: describeOptions(options) });
  } catch (err) {
    if (!(err instanceof ContainerError)) throw err;
    add(fromError('options', 'options', 'fail', err));
  }
  add(checkNodeVersion());
  const userns = add(checkUserNamespaces(ctx));
  add(checkOverlay(ctx, userns.status === 'ok'));
  add(checkConfinement());
  add(checkSeccomp(ctx));
  add(await checkCgroups(ctx));
  add(checkIdMaps(ctx));
  const native = add(checkNativeHelper());
  add(await checkImageCache(ctx));
  const source = await checkImageSource(ctx);
  if (source) add(source);
  if (native.status === 'fail' || results[0]!.status === 'fail') {
    add({ id: 'sandbox', title: 'sandbox', status: 'fail', summary: 'not probed: fix the problems above first' });
  } else {
    add(await probeSandbox(ctx));
  }

  const ok = results.every((r) => r.status !== 'fail');
  if (values.json) out(JSON.stringify({ ok, rootless, user: ctx.userName, checks: results }, null, 2));
  else out(ok ? 'Sandboxes with these options can run here.' : 'Sandboxes with these options cannot run here: see ✗ above.');
  return ok ? 0 : 1;
}

function describeOptions(o: object): string {
  const set = Object.entries(o).map(([k, v]) => `${k}=${typeof v === 'object' ? JSON.stringify(v) : String(v)}`);
  return set.length ? `checking with ${set.join(', ')}` : 'checking with the defaults (image host, no limits)';
}
