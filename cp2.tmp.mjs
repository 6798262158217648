import { startContainer } from '/work/wt-commit/dist/index.js';
const c = await startContainer({ image: '/work/wt-commit/.cache/images/busybox', cmd: ['sleep', '1000'] });
console.log('started');
await c.copyTo(Buffer.from('bytes!'), '/srv/bytes.txt');
console.log('copied bytes');
await c.copyTo('/tmp/cp-src', '/srv/copy');
console.log((await c.exec(['sh', '-c', 'ls -lnR /srv; cat /srv/bytes.txt'])).stdout);
await c.stop();
