// `node dist/service/main.js --listen PATH --owner PID`: the run's sandbox service (server.ts),
// started by the run's first test worker (client.ts). Says "ready" on stdout once it listens.
import { enableCompileCache } from 'node:module';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { defaultCacheDir } from '../image/cache-layout.ts';

const { values } = parseArgs({ options: { listen: { type: 'string' }, owner: { type: 'string' } } });
if (!values.listen || !values.owner) {
  process.stderr.write('usage: main.js --listen PATH --owner PID\n');
  process.exit(2);
}
// Every run starts one: V8's compiled code for the runtime is kept (a process of our own, so
// this changes nothing of the user's), which spares each run most of compiling it again.
enableCompileCache(join(defaultCacheDir(), 'v8-compile-cache'));
const { serve } = await import('./server.ts');
await serve(values.listen, Number(values.owner));
process.stdout.write('ready\n');
