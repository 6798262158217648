// The end-to-end probe: a real sandbox with the given options, through the
// same runtime API a test uses, running `true`. Whatever the checks above
// missed, this finds, and its error is the one a test would get.
import { ContainerError } from '../../errors.ts';
import { startContainer } from '../../runtime/index.ts';
import { fromError, type CheckResult, type DoctorContext } from './check.ts';

const ID = 'sandbox';
const TITLE = 'sandbox';

export async function probeSandbox(ctx: DoctorContext): Promise<CheckResult> {
  const started = Date.now();
  const image = ctx.options.image ?? 'host';
  try {
    const container = await startContainer(ctx.options);
    try {
      const r = await container.exec(['true']);
      if (r.exitCode !== 0) {
        return { id: ID, title: TITLE, status: 'fail', code: 'PROBE_FAILED', summary: `image ${image}: \`true\` exited with ${r.exitCode} in the sandbox: ${r.stderr.trim()}` };
      }
    } finally {
      await container.stop({ timeout: 0 });
    }
    return { id: ID, title: TITLE, status: 'ok', summary: `started image ${image} and ran \`true\` in it (${Date.now() - started} ms)` };
  } catch (err) {
    if (err instanceof ContainerError) return fromError(ID, TITLE, 'fail', err, `image ${image}: `);
    return { id: ID, title: TITLE, status: 'fail', code: 'PROBE_FAILED', summary: `image ${image}: ${(err as Error).message}` };
  }
}
