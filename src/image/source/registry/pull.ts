// A registry reference as a Puller: the tag's manifest (one request), then for
// an index the platform's manifest, and the config and layers from the same
// repository.
import { loadPlan } from '../../load-plan.ts';
import type { Platform } from '../../platform.ts';
import type { Puller } from '../../pull.ts';
import type { Descriptor } from '../../select-manifest.ts';
import { choosePlatformManifest } from '../../select-manifest.ts';
import type { RegistriesConfig } from './config.ts';
import { formatReference } from './reference.ts';
import type { RegistryReference } from './reference.ts';
import { RegistrySource } from './source.ts';

export function registryPuller(ref: RegistryReference, platform: Platform, config: RegistriesConfig): Puller {
  const source = new RegistrySource(ref, config);
  const reference = formatReference(ref);
  let top: Descriptor | undefined;
  return {
    reference,
    from: ref.registry,
    async current() {
      top = await source.top();
      return top.digest;
    },
    async open() {
      const selected = await choosePlatformManifest(source, reference, top!, platform);
      return { manifestDigest: selected.digest, content: source, plan: () => loadPlan(source, reference, selected) };
    },
  };
}
