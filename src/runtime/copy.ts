// copyTo / copyFrom: directories (or single files) into and out of a running sandbox, as tar
// streams or host directories. Into it, every entry is checked here (no absolute or ".."
// paths, nothing below a symlink of the same archive, no device nodes) and then made by
// `vtc-runtime tree --write` as the sandbox's root: the destination resolves inside the
// sandbox's root as writeFile's path does, entries below it are never written through a
// symlink, and owners are the sandbox's ids (so a rootless sandbox maps them through its
// /etc/subuid range). Out of it, `tree --read` streams the path and it is made a tar here.
import { createReadStream, mkdirSync, statSync, type Stats } from 'node:fs';
import { isAbsolute, posix, resolve } from 'node:path';
import { Readable, type Writable } from 'node:stream';
import { once } from 'node:events';
import { CopyError, type ContainerError } from '../errors.ts';
import type { TarEntry, TarSink } from '../image/tar/parser.ts';
import { TarParser } from '../image/tar/parser.ts';
import { TarFormatError } from '../image/tar/header.ts';
import { TAR_END, encodeTarHeader, tarPadding, type TarWriteEntry } from '../image/tar/writer.ts';
import { UnsafeEntryError, normalizeEntryPath } from '../image/unpack/entry-path.ts';
import { launchTree, type TreeErrorEvent, type TreeProcess, type TreeTarget } from './tree-process.ts';
import { TreeDecoder, encodeEntry, endRecord, type TreeEntry, type TreeSink } from './tree-stream.ts';

export interface CopyToOptions {
  /**
   * Who owns what is copied in: 'name', 'uid', 'name:group' or 'uid:gid', resolved in the image. Default:
   * the sandbox's root for a host file or directory (as `docker cp` does), the archive's own owners for a tar stream.
   */
  owner?: string;
  /** A single file's mode (default: the host file's). */
  mode?: number;
}

/** What copying needs of the sandbox (Container hands it over). */
export interface CopyTarget extends TreeTarget {
  running: boolean;
  resolveUser(user: string): Promise<{ uid: number; gid: number }>;
}

/** A host path (a directory or a file), the content of one file, or a tar stream. */
export type CopySource = string | Uint8Array | Readable | NodeJS.ReadableStream;

function unsafe(what: string, detail: string): CopyError {
  return new CopyError('COPY_UNSAFE_ENTRY', `${what}: ${detail}; nothing of it or after it was copied`,
    { fix: 'the archive is malformed or hostile: make it with tar -C DIR . (relative paths, no device nodes)' });
}

function treeFailure(action: string, target: TreeTarget) {
  return (e: TreeErrorEvent | undefined): ContainerError => {
    const detail = e ? `${e.message}${e.path ? ` (${e.path})` : ''}${e.code ? `: ${e.code}` : ''}` : 'the runtime ended without a status';
    if (e?.code === 'EINVAL' && /not mapped/.test(e.message)) {
      return new CopyError('COPY_OWNER_UNMAPPED', `${action} in sandbox ${target.id}: ${detail}`,
        { fix: "give owner: 'root' (or another user the sandbox has); a rootless sandbox maps ids other than its root only with an /etc/subuid range" });
    }
    if (e?.code === 'ESRCH') return new CopyError('NOT_RUNNING', `${action}: sandbox ${target.id} is not running`);
    if (e?.code === 'ELOOP') return new CopyError('COPY_UNSAFE_ENTRY', `${action} in sandbox ${target.id}: ${detail}`);
    if (e?.code === 'ENOENT' && e.stage === 'tree' && /cannot open the path/.test(e.message)) {
      return new CopyError('COPY_SOURCE_NOT_FOUND', `${action}: ${e.path} does not exist in sandbox ${target.id}`);
    }
    return new CopyError('COPY_FAILED', `${action} in sandbox ${target.id} failed: ${detail}`);
  };
}

function checkContainerPath(path: unknown, what: string): string {
  if (typeof path !== 'string' || !path.startsWith('/') || path.includes('\0')) {
    throw new CopyError('COPY_INVALID_PATH', `${what}: ${JSON.stringify(path)} must be an absolute path in the sandbox`);
  }
  return path;
}

/** Writes queued buffers to a writable, waiting whenever it asks to. */
async function drainInto(out: Writable, queue: Buffer[]): Promise<void> {
  for (const buf of queue.splice(0)) {
    if (!out.write(buf)) await Promise.race([once(out, 'drain'), once(out, 'close')]);
    if (out.destroyed) throw new CopyError('COPY_FAILED', 'the runtime stopped reading the copy');
  }
}

// ---------- into the sandbox ----------

/** A tar archive's entries as checked records for `tree --write`. */
class ArchiveToRecords implements TarSink {
  readonly queue: Buffer[] = [];
  /** what this archive made at each path: a path below anything but a directory of it is refused */
  readonly #kinds = new Map<string, TarEntry['type']>();
  readonly #owner: { uid: number; gid: number } | undefined;
  readonly #what: string;
  #skipping = false;

  constructor(owner: { uid: number; gid: number } | undefined, what: string) {
    this.#owner = owner;
    this.#what = what;
  }

  entry(e: TarEntry): void {
    const where = `${this.#what}: entry "${e.path}"`;
    let rel: string;
    try {
      rel = normalizeEntryPath(e.path);
    } catch (err) {
      throw unsafe(where, (err as UnsafeEntryError).message.replace(/^entry "[^"]*" /, ''));
    }
    this.#skipping = rel === ''; // the destination itself: it exists (or was made), its metadata stays
    if (this.#skipping) return;
    for (let i = rel.indexOf('/'); i >= 0; i = rel.indexOf('/', i + 1)) {
      const kind = this.#kinds.get(rel.slice(0, i));
      if (kind !== undefined && kind !== 'dir') throw unsafe(where, `it is below "${rel.slice(0, i)}", a ${kind} of this archive (entries are never written through one)`);
    }
    if (e.sparse) throw unsafe(where, 'it is a GNU sparse file, which is not supported');
    let link = '';
    switch (e.type) {
      case 'file': case 'dir': case 'fifo': break;
      case 'symlink': link = e.linkpath; break;
      case 'hardlink': {
        try {
          link = normalizeEntryPath(e.linkpath, 'its target');
        } catch (err) {
          throw unsafe(where, (err as UnsafeEntryError).message);
        }
        const kind = this.#kinds.get(link);
        if (kind !== 'file' && kind !== 'fifo' && kind !== 'symlink') throw unsafe(where, `it links to "${e.linkpath}", which is not a file made earlier in this archive`);
        break;
      }
      case 'char': case 'block': throw unsafe(where, `it is a device node (${e.type} ${e.devmajor}:${e.devminor}), which is never copied into a sandbox`);
      default: throw unsafe(where, `its type ${JSON.stringify(e.typeflag)} is not supported`);
    }
    this.#kinds.set(rel, e.type);
    const xattrs = e.xattrs && new Map([...e.xattrs].filter(([name]) => name.startsWith('user.') || name === 'security.capability'));
    this.queue.push(encodeEntry({
      path: rel, kind: e.type, mode: e.mode & 0o7777, uid: this.#owner?.uid ?? e.uid, gid: this.#owner?.gid ?? e.gid,
      mtime: e.mtime, size: e.type === 'file' ? e.size : 0, link, devmajor: 0, devminor: 0, xattrs: xattrs?.size ? xattrs : undefined,
    }));
  }

  data(chunk: Buffer): void {
    if (!this.#skipping) this.queue.push(chunk);
  }

  endEntry(): void {}
}

async function writeTree(target: CopyTarget, dest: string, what: string, produce: (tree: TreeProcess) => Promise<void>): Promise<void> {
  if (!target.running || !target.pid) throw new CopyError('NOT_RUNNING', `${what}: sandbox ${target.id} is not running`);
  const tree = await launchTree(target, ['--write', dest], { stdin: true, fail: treeFailure(what, target) });
  tree.stdout.resume(); // it writes nothing there; read to its end all the same
  try {
    await produce(tree);
    tree.stdin!.end(endRecord());
    await tree.done;
  } catch (err) {
    tree.kill();
    // The runtime's own refusal (a symlink below the destination, an unmapped owner) says more than a broken pipe.
    const reported = await tree.reported;
    throw reported && !(err instanceof CopyError && err.code === 'COPY_UNSAFE_ENTRY') ? reported : err;
  }
}

/** Sends a tar archive's entries, checked, below dest. */
async function sendArchive(target: CopyTarget, archive: AsyncIterable<Buffer>, dest: string, owner: { uid: number; gid: number } | undefined, what: string): Promise<void> {
  const records = new ArchiveToRecords(owner, what);
  const parser = new TarParser(records);
  await writeTree(target, dest, what, async (tree) => {
    try {
      for await (const chunk of archive) {
        parser.push(chunk);
        await drainInto(tree.stdin!, records.queue);
        if (parser.ended) break;
      }
      parser.finish();
    } catch (err) {
      if (err instanceof TarFormatError) throw new CopyError('COPY_INVALID_ARCHIVE', `${what}: not a valid tar archive: ${err.message}`);
      throw err;
    }
  });
}

/** One host file (or given content) at path in the sandbox. */
async function copyFileIn(target: CopyTarget, content: { file: string; stats: Stats } | { data: Buffer }, containerPath: string,
  options: { mode?: number; owner?: { uid: number; gid: number } }, what: string): Promise<void> {
  const path = checkContainerPath(containerPath, what);
  const name = posix.basename(path);
  if (!name) throw new CopyError('COPY_INVALID_PATH', `${what}: ${path} names a directory, not a file`);
  const size = 'data' in content ? content.data.length : content.stats.size;
  const entry: TreeEntry = {
    path: name, kind: 'file', size, link: '', devmajor: 0, devminor: 0, xattrs: undefined,
    mode: options.mode ?? ('stats' in content ? content.stats.mode & 0o7777 : 0o644),
    uid: options.owner?.uid ?? 0, gid: options.owner?.gid ?? 0,
    mtime: 'stats' in content ? content.stats.mtimeMs / 1000 : Date.now() / 1000,
  };
  await writeTree(target, posix.dirname(path), what, async (tree) => {
    const queue = [encodeEntry(entry)];
    if ('data' in content) {
      queue.push(content.data);
      await drainInto(tree.stdin!, queue);
      return;
    }
    await drainInto(tree.stdin!, queue);
    let sent = 0;
    for await (const chunk of createReadStream(content.file) as AsyncIterable<Buffer>) {
      const part = chunk.subarray(0, Math.max(0, size - sent)); // a file that grew meanwhile: the record says `size`
      sent += part.length;
      await drainInto(tree.stdin!, [part]);
    }
    if (sent < size) throw new CopyError('COPY_FAILED', `${what}: ${content.file} shrank while it was copied`);
  });
}

function hostStats(source: string, what: string): Stats {
  try {
    return statSync(source);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') throw new CopyError('COPY_SOURCE_NOT_FOUND', `${what}: ${source} does not exist`);
    throw new CopyError('COPY_FAILED', `${what}: cannot read ${source}: ${code ?? (err as Error).message}`, { cause: err });
  }
}

/**
 * copyTo: a host directory's contents into containerPath (made if missing), a host file or bytes to
 * containerPath itself, or a tar stream's entries below containerPath.
 */
export async function copyToSandbox(target: CopyTarget, source: CopySource, containerPath: string, options: CopyToOptions = {}): Promise<void> {
  const path = checkContainerPath(containerPath, 'copyTo');
  const owner = options.owner === undefined ? undefined : await target.resolveUser(options.owner);
  if (source instanceof Uint8Array) return copyFileIn(target, { data: Buffer.from(source) }, path, { mode: options.mode, owner }, `copyTo ${path}`);
  if (typeof source !== 'string') {
    if (!source || typeof (source as AsyncIterable<Buffer>)[Symbol.asyncIterator] !== 'function') {
      throw new CopyError('COPY_INVALID_SOURCE', 'copyTo: the source must be a host path, bytes (a Buffer) or a readable tar stream');
    }
    return sendArchive(target, source as AsyncIterable<Buffer>, path, owner, 'copyTo (tar stream)');
  }
  const abs = resolve(source);
  const what = `copyTo ${abs}`;
  const stats = hostStats(abs, what);
  if (stats.isFile()) return copyFileIn(target, { file: abs, stats }, path, { mode: options.mode, owner }, what);
  if (!stats.isDirectory()) throw new CopyError('COPY_INVALID_SOURCE', `${what}: not a file or a directory`);
  const { c } = await import('tar');
  // node-tar reads the caller's own directory; its archive is checked like any other on the way in.
  const archive = c({ cwd: abs }, ['.']) as unknown as AsyncIterable<Buffer>;
  return sendArchive(target, archive, path, owner ?? { uid: 0, gid: 0 }, what);
}

// ---------- out of the sandbox ----------

/** Records from `tree --read` as a tar archive; entries are relative to the path read (a file: its name). */
class RecordsToTar implements TreeSink {
  readonly queue: Buffer[] = [];
  readonly #rootName: string;
  #file: TarWriteEntry | undefined;
  #emitting = false;

  constructor(rootName: string) {
    this.#rootName = rootName;
  }

  entry(e: TreeEntry): void {
    this.#file = undefined;
    this.#emitting = false;
    if (e.path === '' && e.kind === 'dir') return; // the directory read: its entries are the archive
    if (e.kind === 'socket') return; // a tar cannot hold one
    const out: TarWriteEntry = {
      path: e.path === '' ? this.#rootName : e.path, type: e.kind, mode: e.mode, uid: e.uid, gid: e.gid, size: e.kind === 'file' ? e.size : 0,
      mtime: e.mtime, linkpath: e.link, devmajor: e.devmajor, devminor: e.devminor, xattrs: e.xattrs,
    };
    this.queue.push(encodeTarHeader(out));
    this.#emitting = true;
    if (out.type === 'file') this.#file = out;
  }

  data(chunk: Buffer): void {
    if (this.#emitting) this.queue.push(chunk);
  }

  endEntry(): void {
    if (this.#file) this.queue.push(tarPadding(this.#file.size));
    this.#file = undefined;
  }
}

/**
 * Records from `tree --read` made fit for a host directory: the caller's own files (no owners from
 * the sandbox), no setuid or setgid bits, no device nodes or sockets, only user.* xattrs (a file
 * capability planted in a sandbox must not become one on the host).
 */
class RecordsForHost implements TreeSink {
  readonly queue: Buffer[] = [];
  readonly #rootName: string;
  #emitting = false;

  constructor(rootName: string) {
    this.#rootName = rootName;
  }

  entry(e: TreeEntry): void {
    this.#emitting = false;
    if (e.path === '' && e.kind === 'dir') return; // the directory read is the destination itself
    if (e.kind === 'socket' || e.kind === 'char' || e.kind === 'block') return;
    const xattrs = e.xattrs && new Map([...e.xattrs].filter(([name]) => name.startsWith('user.')));
    this.queue.push(encodeEntry({
      ...e, path: e.path === '' ? this.#rootName : e.path, mode: e.mode & 0o1777, uid: process.getuid!(), gid: process.getgid!(),
      xattrs: xattrs?.size ? xattrs : undefined,
    }));
    this.#emitting = true;
  }

  data(chunk: Buffer): void {
    if (this.#emitting) this.queue.push(chunk);
  }

  endEntry(): void {}
}

/** `tree --read` of containerPath, each chunk through the sink; the generator yields what the sink queued. */
async function* readTree(target: CopyTarget, containerPath: string, sink: TreeSink & { queue: Buffer[] }): AsyncGenerator<Buffer> {
  const what = `copyFrom ${containerPath}`;
  if (!target.running || !target.pid) throw new CopyError('NOT_RUNNING', `${what}: sandbox ${target.id} is not running`);
  const tree = await launchTree(target, ['--read', containerPath, '--one-file-system'], { fail: treeFailure(what, target) });
  const decoder = new TreeDecoder(sink);
  try {
    for await (const chunk of tree.stdout as AsyncIterable<Buffer>) {
      decoder.push(chunk);
      yield* sink.queue.splice(0);
    }
    await tree.done;
    decoder.finish();
  } catch (err) {
    tree.kill();
    throw (await tree.reported) ?? err;
  }
}

async function* tarOf(target: CopyTarget, containerPath: string): AsyncGenerator<Buffer> {
  yield* readTree(target, containerPath, new RecordsToTar(posix.basename(containerPath) || 'root'));
  yield TAR_END;
}

/** copyFrom: what is at containerPath as a tar stream, or written into hostDir (resolves when done). */
export function copyFromSandbox(target: CopyTarget, containerPath: string): Readable;
export function copyFromSandbox(target: CopyTarget, containerPath: string, hostDir: string): Promise<void>;
export function copyFromSandbox(target: CopyTarget, containerPath: string, hostDir?: string): Readable | Promise<void> {
  const path = checkContainerPath(containerPath, 'copyFrom');
  if (hostDir === undefined) return Readable.from(tarOf(target, path), { objectMode: false });
  return extractInto(target, path, hostDir);
}

/**
 * Into a host directory, by `tree --write` without a sandbox: with the caller's rights, every entry made
 * below the directory and never through a symlink (one the directory had, or one the copy made), symlink
 * targets kept as they are (node-tar's extractor would rewrite absolute ones and drop others).
 */
async function extractInto(target: CopyTarget, containerPath: string, hostDir: string): Promise<void> {
  if (typeof hostDir !== 'string' || !hostDir) throw new CopyError('COPY_INVALID_PATH', 'copyFrom: the host directory must be a path');
  const dir = isAbsolute(hostDir) ? hostDir : resolve(hostDir);
  const what = `copyFrom ${containerPath} to ${dir}`;
  try {
    mkdirSync(dir, { recursive: true });
  } catch (err) {
    throw new CopyError('COPY_FAILED', `${what}: cannot make the directory: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`, { cause: err });
  }
  const records = readTree(target, containerPath, new RecordsForHost(posix.basename(containerPath) || 'root'));
  const writer = await launchTree({ runRoot: target.runRoot }, ['--write', dir], { stdin: true, fail: treeFailure(what, target) });
  writer.stdout.resume();
  try {
    for await (const chunk of records) await drainInto(writer.stdin!, [chunk]);
    writer.stdin!.end(endRecord());
    await writer.done;
  } catch (err) {
    writer.kill();
    await records.return(undefined);
    throw err instanceof CopyError && err.code !== 'COPY_FAILED' ? err : (await writer.reported) ?? err;
  }
}
