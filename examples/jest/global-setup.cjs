// Builds the redis image from Debian packages (this repository's rootfs/) when it is
// missing or stale. Not needed in your own project: point `image` at an image you have.
const { spawnSync } = require('node:child_process');
const { existsSync } = require('node:fs');
const { join, resolve } = require('node:path');

module.exports = function setup() {
  const repo = resolve(__dirname, '../..');
  const pinned = join(repo, 'node_modules', 'node', 'bin', 'node'); // rootfs/build.ts is TypeScript: Node >= 23.6
  const node = existsSync(pinned) ? pinned : process.execPath;
  const res = spawnSync(node, [join(repo, 'rootfs', 'build.ts'), '--quiet', 'redis'], { stdio: ['ignore', 'pipe', 'pipe'], encoding: 'utf8' });
  if (res.status !== 0) {
    throw new Error(`building the redis image failed (${res.status ?? res.signal}):\n${res.stdout}${res.stderr}\n` +
      '  by hand: node_modules/node/bin/node rootfs/build.ts redis   (as root; see rootfs/README.md)');
  }
};
