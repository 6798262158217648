// Builds the postgres image from Debian packages (rootfs/) if this repository has not yet.
// Not needed in your own project: there, `image` points at an image you already have.
import { ensureImages } from '../shared/ensure-images.ts';

export default function setup(): void {
  ensureImages(['postgres']);
}
