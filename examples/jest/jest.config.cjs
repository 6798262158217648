// Every test file gets its own redis-server, in its own sandbox, from an OCI image.
const { resolve } = require('node:path');

module.exports = {
  testEnvironment: 'vitest-environment-container/jest',
  // The container options, flat (the same options as Vitest's environmentOptions.container).
  testEnvironmentOptions: {
    // An OCI image layout directory. In your project: resolve(__dirname, 'images/redis').
    image: resolve(__dirname, '../../.cache/images/redis'),
    memory: '128m',
    cpus: 1,
    pids: 64,
    waitFor: { healthcheck: true }, // the image's `redis-cli ping`; 6379 is forwarded (ExposedPorts)
  },
  // Builds this repository's redis image if it is missing; not needed in your own project.
  globalSetup: '<rootDir>/global-setup.cjs',
  testMatch: ['<rootDir>/*.test.js'],
};
