// Public types of the image layer.
import type { LayerLimits } from './unpack/layer-writer.ts';
import type { Platform } from './platform.ts';
import type { PullPolicy } from './pull.ts';
import type { RegistriesConfig } from './source/registry/config.ts';

export interface ImageConfig {
  Env?: string[];
  Entrypoint?: string[];
  Cmd?: string[];
  WorkingDir?: string;
  User?: string;
  ExposedPorts?: Record<string, object>;
  Healthcheck?: { Test?: string[]; Interval?: number; Timeout?: number; StartPeriod?: number; Retries?: number };
  Labels?: Record<string, string>;
  StopSignal?: string;
}

export interface ResolvedImage {
  /** what the user wrote */
  reference: string;
  /** sha256:... (for a legacy docker-archive without one: a digest of its manifest.json entry) */
  manifestDigest: string;
  /** overlay lower directories, TOP-MOST layer FIRST (overlay's lowerdir order) */
  lowerDirs: string[];
  /** extra overlay mount options these layers need, e.g. ['userxattr'] when unpacked rootless with user.overlay.* xattrs */
  overlayOptions: string[];
  config: ImageConfig;
}

export interface ResolveOptions {
  cacheDir?: string;
  /** which image of a multi-platform index: { os, architecture, variant? } or 'linux/arm64'; default the host's */
  platform?: Platform | string;
  /** registry and daemon images: 'missing' (default: a pulled reference is used with no request), 'always' (ask for the current digest), 'never' (cache only) */
  pull?: PullPolicy;
  /** insecure registries, mirrors, CA directories; default: the file named by VITEST_CONTAINER_REGISTRIES (see README) */
  registries?: RegistriesConfig;
  /** layers fetched and unpacked at once (default 3) */
  parallel?: number;
  /** bytes of a layer blob read so far (downloaded, for a registry), and how many layers are being fetched */
  onProgress?: (p: { layer: string; bytes: number; total?: number; layers: number }) => void;
  /** caps per layer against tar bombs; defaults: 1,000,000 entries, 64 GiB */
  limits?: Partial<LayerLimits>;
  /** progress lines on stderr for long unpacks; default true (VITEST_CONTAINER_PROGRESS=0 turns them off) */
  progress?: boolean;
}

export type { LayerLimits, Platform, PullPolicy, RegistriesConfig };
