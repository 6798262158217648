// A layout directory or an archive seen as a ContentSource: descriptors are
// files under blobs/<algorithm>/<hex>, legacy layers are named by path.
import { readBlob } from '../select-manifest.ts';
import type { ContentSource, ImageSource } from './types.ts';

export function fileContent(files: ImageSource): ContentSource {
  return {
    location: files.location,
    readManifest: (d, what) => readBlob(files, d, what),
    readBlob: (d, what) => readBlob(files, d, what),
    openLayer: (layer) => files.open(layer.blobPath!),
    layerSize: (layer) => files.size(layer.blobPath!),
  };
}
