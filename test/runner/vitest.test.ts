// The Vitest surface end to end: real Vitest runs of fixture projects, and
// what their users would see.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, test } from 'vitest';
import { isRoot, kernelOomKills } from '../helpers/host.ts';
import { leftoverCgroups, leftoverSpawners, runVitest } from '../helpers/run-fixture.ts';

describe.runIf(isRoot)("environment: 'container'", () => {
  test('each file gets its own sandbox, ports reach it, docblock options merge over the config (2 workers)', async () => {
    const r = await runVitest('vitest-env', ['--maxWorkers=2']);
    expect(r.output).toMatch(/Test Files\s+3 passed \(3\)/);
    expect(r.output).toMatch(/Tests\s+5 passed \(5\)/);
    expect(r.code).toBe(0);
    expect(leftoverCgroups(r.cgroupParent)).toEqual([]);
    // The workers shared one spawner, which ended with the run.
    expect(leftoverSpawners(r.pid)).toEqual([]);
  });

  test('the same with isolate: false: one worker runs every file, and no file sees another file\'s sandbox', async () => {
    const r = await runVitest('vitest-env', ['--no-isolate', '--maxWorkers=1']);
    expect(r.output).toMatch(/Tests\s+5 passed \(5\)/);
    expect(r.code).toBe(0);
    expect(leftoverCgroups(r.cgroupParent)).toEqual([]);
  });

  // Not in the cgroup v2 lane's emulated guest (VTC_EMULATED_GUEST): nothing here depends on the
  // cgroup version, and each of these runs takes ~27 s there.
  describe.skipIf(process.env.VTC_EMULATED_GUEST === '1')("the run's sandbox service starts the next file's sandbox ahead (a spare)", () => {
    interface Start { file: string; sandbox: number; worker: number; memoryLimit: number }
    /** Each file's record (fixtures/vitest-spares/started.ts), one worker at a time, in the order they ran. */
    async function startsOf(env: Record<string, string>): Promise<Start[]> {
      const dir = mkdtempSync(join(tmpdir(), 'vtc-spares-'));
      try {
        const out = join(dir, 'starts.jsonl');
        const r = await runVitest('vitest-spares', ['--maxWorkers=1'], { VTC_SPARES_OUT: out, ...env });
        expect(r.output).toMatch(/Test Files\s+4 passed \(4\)/);
        expect(r.code).toBe(0);
        // The spares nobody took went with the run.
        expect(leftoverCgroups(r.cgroupParent)).toEqual([]);
        return readFileSync(out, 'utf8').trim().split('\n').map((line) => JSON.parse(line) as Start).sort((a, b) => a.worker - b.worker);
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    }
    const startedAhead = (s: Start) => s.sandbox < s.worker;

    test('after the first file, each file with the same options gets a sandbox started before its worker was, used by no file before', async () => {
      const starts = await startsOf({});
      expect(starts).toHaveLength(4);
      const [first, ...later] = starts.filter((s) => s.file !== 'file-3.test.ts');
      expect(startedAhead(first!)).toBe(false);
      expect(later.map(startedAhead)).toEqual([true, true]);
      // The file with options of its own (a docblock) never gets a spare of the others' options.
      const own = starts.find((s) => s.file === 'file-3.test.ts')!;
      expect({ ahead: startedAhead(own), memoryLimit: own.memoryLimit }).toEqual({ ahead: false, memoryLimit: 32 * 1024 * 1024 });
      expect(later.map((s) => s.memoryLimit)).toEqual([64 * 1024 * 1024, 64 * 1024 * 1024]);
    });

    test('VITEST_CONTAINER_SPARES=0: every file waits for a sandbox of its own', async () => {
      const starts = await startsOf({ VITEST_CONTAINER_SPARES: '0' });
      expect(starts.map(startedAhead)).toEqual([false, false, false, false]);
    });

    test('options with a bind mount get no spare: what it shows could change while the file before runs', async () => {
      const starts = await startsOf({ VTC_SPARES_MOUNT: tmpdir() });
      expect(starts.map(startedAhead)).toEqual([false, false, false, false]);
    });
  });

  describe('failures are reported clearly, with the file, and everything is torn down', async () => {
    const run = runVitest('vitest-failures', ['--maxWorkers=2']);
    test('an OOM kill names the limit and the file', async () => {
      const r = await run;
      expect(r.output).toMatch(/OutOfMemoryError: killed: exceeded memory limit 32 MiB while running oom\.test\.ts/);
      // and it happened: the kernel killed the file's memory hog in this run's sandbox, at 32 MiB
      expect(kernelOomKills(r.cgroupParent)).toContainEqual(expect.objectContaining({ task: 'tail', limitKiB: 32 * 1024 }));
    });
    test('a wait that timed out shows the last log lines', async () => {
      expect((await run).output).toMatch(/WaitTimeoutError: timed out after 500 ms waiting for log line "ready to accept connections"\n\s+last output:\n\s+starting up\n\s+still warming/);
    });
    test("the container's main process exiting early shows its exit code and logs", async () => {
      expect((await run).output).toMatch(/the container's main process exited with code 3 while running early-exit\.test\.ts\n\s+last output:\n\s+about to fail/);
    });
    test('a bad image names the image', async () => {
      expect((await run).output).toMatch(/bad-image\.test\.ts[\s\S]*no\/such\/image/);
    });
    test('failing tests still tear down their containers, including forgotten ones', async () => {
      const r = await run;
      expect(r.output).toMatch(/deliberate failure inside withContainer/);
      expect(r.output).toMatch(/Test Files\s+5 failed \(5\)/);
      expect(r.code).toBe(1);
      expect(leftoverCgroups(r.cgroupParent)).toEqual([]);
    });
  });
});
