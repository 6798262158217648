// Turns the native runtime's error events into typed errors that name the
// cause and the fix.
import { CommandError, HostCapabilityError, SandboxError, type ContainerError } from '../errors.ts';
import type { RuntimeEvent } from './events.ts';
import { userNamespaceError } from './host.ts';

type ErrorEvent = Extract<RuntimeEvent, { type: 'error' }>;

export function runtimeError(e: ErrorEvent, rootless: boolean): ContainerError {
  const detail = `${e.message}${e.path ? ` (${e.path})` : ''}${e.code ? `: ${e.code}` : ''}`;
  if (e.stage === 'namespaces' || e.stage === 'userns') {
    if (rootless) return userNamespaceError(detail);
    return new HostCapabilityError('NAMESPACES_UNAVAILABLE', `the kernel refused to create the sandbox's namespaces: ${detail}`,
      { fix: 'check that this kernel has pid, net, ipc, uts, mount and cgroup namespaces, and that a seccomp profile (Docker\'s default) does not block them' });
  }
  if (e.stage === 'overlay' && (e.code === 'ENODEV' || /unknown filesystem/i.test(e.message))) {
    return new HostCapabilityError('OVERLAY_UNAVAILABLE', `this kernel has no overlay filesystem: ${detail}`, { fix: 'sudo modprobe overlay' });
  }
  if (e.stage === 'overlay' && /stacking depth/i.test(e.message)) {
    return new HostCapabilityError('OVERLAY_UNAVAILABLE', `the image's files are already on an overlay stacked as deep as the kernel allows (a container in a container), so a sandbox's overlay cannot go on top: ${detail}`,
      { fix: 'put the image cache on a file system of its own (VITEST_CONTAINER_CACHE=/path/on/a/volume), or run the tests with fewer layers of containers around them' });
  }
  if (e.stage === 'overlay' && rootless && e.code === 'EPERM') {
    return new HostCapabilityError('OVERLAY_IN_USERNS_UNAVAILABLE', `this kernel does not allow overlay mounts in a user namespace: ${detail}`,
      { fix: 'use Linux 5.11 or newer, or run the tests as root' });
  }
  if (e.stage === 'exec' && (e.code === 'ESRCH' || e.code === 'ENOENT')) {
    return new SandboxError('NOT_RUNNING', `the sandbox is no longer running: ${detail}`);
  }
  if (e.stage === 'process' || e.stage === 'user') {
    return new CommandError('COMMAND_SETUP_FAILED', `the sandbox's process could not be set up: ${detail}`, 126);
  }
  return new SandboxError('SANDBOX_SETUP_FAILED', `starting the sandbox failed at ${e.stage}: ${detail}`);
}

export function commandNotFound(path: string, code: string): CommandError {
  return code === 'ENOENT' || code === 'ENOTDIR'
    ? new CommandError('COMMAND_NOT_FOUND', `${path}: not found in the sandbox (exit 127)`, 127,
      { fix: 'check the command and the image (PATH inside the sandbox comes from the image and the env option)' })
    : new CommandError('COMMAND_NOT_EXECUTABLE', `${path}: cannot execute in the sandbox: ${code} (exit 126)`, 126);
}
