// Public types of the image layer.
import type { LayerLimits } from './unpack/layer-writer.ts';

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
  platform?: { os: string; architecture: string; variant?: string };
  onProgress?: (p: { layer: string; bytes: number; total?: number }) => void;
  /** caps per layer against tar bombs; defaults: 1,000,000 entries, 64 GiB */
  limits?: Partial<LayerLimits>;
  /** progress lines on stderr for long unpacks; default true (VITEST_CONTAINER_PROGRESS=0 turns them off) */
  progress?: boolean;
}

export type { LayerLimits };
