// Platform matching for multi-platform image indexes.
export interface Platform {
  os: string;
  architecture: string;
  variant?: string;
}

const NODE_ARCH: Record<string, string> = {
  x64: 'amd64', arm64: 'arm64', arm: 'arm', ia32: '386', ppc64: 'ppc64le', s390x: 's390x',
  riscv64: 'riscv64', loong64: 'loong64', mips64el: 'mips64le',
};

export function hostPlatform(): Platform {
  const architecture = NODE_ARCH[process.arch] ?? process.arch;
  const armVersion = (process.config.variables as Record<string, unknown>).arm_version;
  const variant = architecture === 'arm' && armVersion ? `v${String(armVersion)}` : undefined;
  return { os: process.platform, architecture, variant };
}

/** arm64 images are usually published without a variant, meaning v8. */
function normalVariant(p: Platform): string | undefined {
  if (p.architecture === 'arm64' && (p.variant === undefined || p.variant === 'v8')) return undefined;
  return p.variant || undefined;
}

/** 0: no match; 1: matches; 2: matches including the variant. */
export function platformScore(offered: Platform, wanted: Platform): number {
  if (offered.os !== wanted.os || offered.architecture !== wanted.architecture) return 0;
  const want = normalVariant(wanted);
  const have = normalVariant(offered);
  if (want === undefined) return have === undefined ? 2 : 1;
  return want === have ? 2 : 0;
}

export function formatPlatform(p: Platform): string {
  return [p.os, p.architecture, p.variant].filter(Boolean).join('/');
}

/** 'linux/arm64', 'linux/arm/v7' -> Platform. */
export function parsePlatform(text: string): Platform | undefined {
  const [os, architecture, variant, ...rest] = text.split('/');
  if (!os || !architecture || rest.length || !/^[a-z0-9_]+$/.test(os) || !/^[a-z0-9_]+$/.test(architecture) || (variant !== undefined && !/^[a-z0-9]+$/.test(variant))) return undefined;
  return variant ? { os, architecture, variant } : { os, architecture };
}
