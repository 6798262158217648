// What a test worker that has the run's service start its sandbox may still need of the runtime,
// loaded only when it does (see loadLocalRuntime): the mirror of the file's sandbox, a FileSandbox
// for what the service cannot serve and for what the tests started themselves, and the means to
// end what the service kept for this worker when the worker ends.
export { mirrorContainer } from './mirror.ts';
export { FileSandbox } from '../session/file-sandbox.ts';
export { killAtExit } from '../session/release.ts';
export { cgroupDriver } from '../runtime/cgroups/index.ts';
export { prewarmRuntime } from '../runtime/launch.ts';
export { hostInfo } from '../runtime/host.ts';
