// One class per failure family, each with a stable `code` that callers can
// switch on, and a message that says what happened and what to do about it.

export interface ErrorDetails {
  /** What to do about it, when there is something to do. */
  fix?: string;
  cause?: unknown;
}

export class ContainerError extends Error {
  readonly code: string;
  readonly fix: string | undefined;
  constructor(code: string, message: string, details: ErrorDetails = {}) {
    super(details.fix ? `${message}\n  fix: ${details.fix}` : message, { cause: details.cause });
    this.name = new.target.name;
    this.code = code;
    this.fix = details.fix;
  }
}

/** Options that are unknown, mistyped or impossible (memory too small, cpus <= 0, ...). */
export class InvalidOptionsError extends ContainerError {}

/**
 * The host lacks a kernel feature or permission the sandbox needs. There is always something the
 * user can do about it (a sysctl, a package, a flag of the container the tests run in): `fix`
 * is required.
 */
export class HostCapabilityError extends ContainerError {
  declare readonly fix: string;
  constructor(code: string, message: string, details: ErrorDetails & { fix: string }) {
    super(code, message, details);
  }
}

/** The runtime failed while creating or running a sandbox. */
export class SandboxError extends ContainerError {}

/** The sandbox's main command could not be started (not found, not executable). */
export class CommandError extends ContainerError {
  readonly exitCode: number;
  constructor(code: string, message: string, exitCode: number, details: ErrorDetails = {}) {
    super(code, message, details);
    this.exitCode = exitCode;
  }
}

/** An image that cannot be found, read, verified or unpacked. */
export class ImageError extends ContainerError {}

/**
 * An image that could not be fetched from where it lives: a registry (unreachable, TLS,
 * unauthorized, rate limited, unknown tag or repository) or the local Docker/podman daemon.
 * A kind of ImageError, so code that handles image failures handles these too.
 */
export class RegistryError extends ImageError {}

/** A wait strategy (log line, port, command, HTTP, healthcheck) did not succeed in time. */
export class WaitTimeoutError extends ContainerError {}

/** The sandbox's main process ended while something still needed it (e.g. during a wait). */
export class ContainerExitedError extends ContainerError {
  readonly exitCode: number;
  constructor(code: string, message: string, exitCode: number, details: ErrorDetails = {}) {
    super(code, message, details);
    this.exitCode = exitCode;
  }
}

/** A process in the sandbox was killed by the kernel for exceeding the memory limit. */
export class OutOfMemoryError extends ContainerError {}

/**
 * Copying files into or out of a sandbox (copyTo, copyFrom, the files and directories options) failed:
 * a missing source, an archive entry that is refused (an absolute or ".." path, one below a symlink,
 * a device node), an owner the sandbox does not map, a destination that is not a directory.
 */
export class CopyError extends ContainerError {}

/** A seeded image (seedImage, provideSeededImage) could not be built: the seed function or the commit failed. */
export class SeedError extends ContainerError {}
