// `doctor --image REF` for a registry or daemon image: can it be reached, with
// which credentials, and what does the reference point at. No download.
import { ContainerError } from '../../errors.ts';
import { probeImageSource } from '../../image/index.ts';
import { fromError, type CheckResult, type DoctorContext } from './check.ts';

const ID = 'image-source';
const TITLE = 'image source';

/** Undefined for images that are not fetched from anywhere (host, rootfs:, local layouts). */
export async function checkImageSource(ctx: DoctorContext): Promise<CheckResult | undefined> {
  const image = ctx.options.image;
  if (image === undefined || image === 'host' || image.startsWith('rootfs:')) return undefined;
  try {
    const probe = await probeImageSource(image);
    if (probe.kind === 'files') return undefined;
    return { id: ID, title: TITLE, status: 'ok', summary: probe.summary };
  } catch (err) {
    if (err instanceof ContainerError) return fromError(ID, TITLE, 'fail', err, `${image}: `);
    throw err;
  }
}
