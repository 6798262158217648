// A sandbox the run's service started, as a Container in the test worker that uses it: exec,
// files, copies, ports and stats work from its identity (pid, cgroup, spec) as for one of
// our own; its monitor is a relay of the service's (events, log, end), and stopping it is
// asked of the service, whose sandbox it stays.
import { readFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { PassThrough, Writable } from 'node:stream';
import { Container, type ContainerStats } from '../runtime/container.ts';
import { cgroupDriver } from '../runtime/cgroups/index.ts';
import { consumed, type RuntimeProcess } from '../runtime/launch.ts';
import { normalizeOptions, type ContainerOptions } from '../runtime/options.ts';
import type { Identity } from '../runtime/image.ts';
import type { RuntimeSpec } from '../runtime/spec.ts';
import type { ServiceClient } from './client.ts';
import type { SandboxDescription } from './protocol.ts';

export interface Mirror {
  container: Container;
  /** Resolves once the log so far has arrived and what follows is relayed. */
  attached: Promise<void>;
}

export function mirrorContainer(d: SandboxDescription, options: ContainerOptions, service: ServiceClient): Mirror {
  const stdout = new PassThrough(), stderr = new PassThrough(), status = new PassThrough();
  let finalStats: ContainerStats | undefined;
  let ended!: () => void;
  const closed = new Promise<void>((resolve) => { ended = resolve; })
    .then(() => Promise.all([consumed(stdout), consumed(stderr), consumed(status)])).then(() => {});
  service.follow(d.id, (p) => {
    if (p.push === 'event') status.write(`${JSON.stringify(p.e)}\n`);
    else if (p.push === 'log') stdout.write(Buffer.from(p.data as string, 'base64'));
    else if (p.push === 'closed') {
      finalStats = p.stats as ContainerStats | undefined;
      for (const s of [stdout, stderr, status]) s.end();
      ended();
    }
  });
  const monitor: RuntimeProcess = {
    stdout, stderr, status, closed,
    // A signal byte, as the monitor's control socket takes it (Container.kill).
    control: new Writable({
      write(chunk: Buffer, _encoding, done) {
        for (const signal of chunk) void service.request('signal', { sandbox: d.id, signal }).catch(() => {});
        done();
      },
    }),
    release() {},
    unref() {},
  };
  const resolveUser = (user: string) => service.request<Identity>('resolveUser', { sandbox: d.id, user });
  const cgroup = d.cgroupPath ? cgroupDriver()?.open(dirname(d.cgroupPath), basename(d.cgroupPath)) : undefined;
  const container = new Container({
    id: d.id, hostname: d.hostname, image: { ...d.image, resolveUser }, options: normalizeOptions(options),
    spec: JSON.parse(readFileSync(join(d.runDir, 'config.json'), 'utf8')) as RuntimeSpec, // as the runtime read it (protocol.ts)
    runDir: d.runDir, cgroup, rootless: d.rootless, resolveUser, monitor, runRoot: d.runRoot,
    replay: { events: d.events, log: Buffer.from(d.log) },
    remote: {
      stop: (timeout) => service.request('stop', { sandbox: d.id, timeout }),
      finalStats: () => finalStats,
    },
  });
  return { container, attached: service.request('attach', { sandbox: d.id, seen: { events: d.events.length, logTotal: d.logTotal } }) };
}
