// Pulled references: refs/<hash>.json maps a registry or daemon reference (and
// the platform it was pulled for) to the manifest it resolved to, so that
// pull: 'missing' finds a cached image with no request at all.
import { mkdirSync, readdirSync, readFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { refsDir } from './cache-layout.ts';
import { cacheFault, writeFileAtomic } from './fs-util.ts';

export interface RefMemo {
  /** canonical: docker.io/library/redis:7, docker-daemon:app:latest */
  reference: string;
  /** os/architecture[/variant] it was pulled for */
  platform: string;
  /** what the name pointed at when last checked: an index or manifest digest, or a daemon's image id */
  topDigest: string;
  /** the platform's image manifest: key of images/<hex>.json */
  manifestDigest: string;
  /** where from: a registry host, or the daemon's socket */
  from: string;
  pulledAt: string;
}

export function refKey(reference: string, platform: string): string {
  return createHash('sha256').update(`${reference}\n${platform}`).digest('hex').slice(0, 32);
}

export function readRef(cache: string, reference: string, platform: string): RefMemo | undefined {
  try {
    const memo = JSON.parse(readFileSync(`${refsDir(cache)}/${refKey(reference, platform)}.json`, 'utf8')) as RefMemo;
    return memo.reference === reference && memo.platform === platform ? memo : undefined;
  } catch {
    return undefined;
  }
}

export function writeRef(cache: string, memo: RefMemo): void {
  try {
    mkdirSync(refsDir(cache), { recursive: true, mode: 0o700 });
    writeFileAtomic(`${refsDir(cache)}/${refKey(memo.reference, memo.platform)}.json`, JSON.stringify(memo));
  } catch (err) {
    throw cacheFault(err, cache, memo.reference);
  }
}

export function listRefs(cache: string): RefMemo[] {
  let names: string[];
  try {
    names = readdirSync(refsDir(cache));
  } catch {
    return [];
  }
  const refs: RefMemo[] = [];
  for (const name of names.filter((n) => n.endsWith('.json'))) {
    try {
      refs.push(JSON.parse(readFileSync(`${refsDir(cache)}/${name}`, 'utf8')) as RefMemo);
    } catch { /* being replaced right now */ }
  }
  return refs.sort((a, b) => a.reference.localeCompare(b.reference));
}
