// `node dist/service/main.js --listen PATH --owner PID`: the run's sandbox service (server.ts),
// started by the run's first test worker (client.ts). Says "ready" on stdout once it listens.
import { parseArgs } from 'node:util';
import { serve } from './server.ts';

const { values } = parseArgs({ options: { listen: { type: 'string' }, owner: { type: 'string' } } });
if (!values.listen || !values.owner) {
  process.stderr.write('usage: main.js --listen PATH --owner PID\n');
  process.exit(2);
}
await serve(values.listen, Number(values.owner));
process.stdout.write('ready\n');
