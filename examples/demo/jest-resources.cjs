// For the demo only (passed with --setupFilesAfterEnv): after a Jest test file's
// last test, append what its sandbox used to $DEMO_RESOURCES_OUT as one JSON line.
const { appendFileSync } = require('node:fs');

afterAll(async () => {
  const out = process.env.DEMO_RESOURCES_OUT;
  if (!out || typeof container === 'undefined') return;
  const s = await container.stats();
  appendFileSync(out, `${JSON.stringify({
    testPath: expect.getState().testPath,
    image: container.image.reference,
    peakMemoryBytes: s.memory.peakBytes,
    cpuSeconds: s.cpu.usageSeconds,
    oomKills: s.oomKills,
  })}\n`);
});
