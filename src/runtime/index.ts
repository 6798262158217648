export { createNetwork, startContainer, withContainer } from './start.ts';
export { Network } from '../net/network.ts';
export { Container, type ContainerStats, type ExecOptions, type ExecProcess, type ExecResult, type ExitInfo } from './container.ts';
export { normalizeOptions, parseBytes, type ContainerOptions, type MountOption } from './options.ts';
export { buildSpec, type RuntimeSpec } from './spec.ts';
export { cgroupDriver } from './cgroups/index.ts';
export { hostInfo } from './host.ts';
export * from '../errors.ts';
