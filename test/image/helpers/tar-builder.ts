// Writes tar archives byte by byte, so tests can make entries no well-behaved
// tool would produce (absolute names, "..", links out of the root, bad sums).
export interface TarEntrySpec {
  name: string;
  type?: 'file' | 'dir' | 'symlink' | 'hardlink' | 'char' | 'block' | 'fifo' | string;
  mode?: number;
  uid?: number;
  gid?: number;
  mtime?: number;
  data?: Buffer | string;
  linkname?: string;
  devmajor?: number;
  devminor?: number;
  /** PAX records written in an 'x' header before the entry */
  pax?: Record<string, string>;
  /** override the size field (e.g. to claim more data than follows) */
  size?: number;
}

const TYPEFLAG: Record<string, string> = { file: '0', hardlink: '1', symlink: '2', char: '3', block: '4', dir: '5', fifo: '6' };

export function tarHeader(e: TarEntrySpec, size: number): Buffer {
  const h = Buffer.alloc(512);
  const type = e.type ?? 'file';
  h.write(e.name, 0, 100, 'utf8');
  h.write(octal(e.mode ?? (type === 'dir' ? 0o755 : 0o644), 8), 100, 'latin1');
  h.write(octal(e.uid ?? 0, 8), 108, 'latin1');
  h.write(octal(e.gid ?? 0, 8), 116, 'latin1');
  h.write(octal(size, 12), 124, 'latin1');
  h.write(octal(e.mtime ?? 1_700_000_000, 12), 136, 'latin1');
  h.write(TYPEFLAG[type] ?? type, 156, 'latin1');
  h.write(e.linkname ?? '', 157, 100, 'utf8');
  h.write('ustar\x0000', 257, 'latin1');
  h.write(octal(e.devmajor ?? 0, 8), 329, 'latin1');
  h.write(octal(e.devminor ?? 0, 8), 337, 'latin1');
  h.fill(0x20, 148, 156);
  let sum = 0;
  for (const b of h) sum += b;
  h.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148, 'latin1');
  return h;
}

function octal(n: number, width: number): string {
  return `${n.toString(8).padStart(width - 1, '0')}\0`;
}

function pad(buf: Buffer): Buffer[] {
  const rest = (512 - (buf.length % 512)) % 512;
  return rest ? [buf, Buffer.alloc(rest)] : [buf];
}

export function paxBody(records: Record<string, string>): Buffer {
  let out = '';
  for (const [k, v] of Object.entries(records)) {
    const body = ` ${k}=${v}\n`;
    const bytes = Buffer.byteLength(body);
    let len = bytes + 1;
    while (String(len).length + bytes !== len) len = String(len).length + bytes;
    out += `${len}${body}`;
  }
  return Buffer.from(out);
}

export function tarEntry(e: TarEntrySpec): Buffer {
  const parts: Buffer[] = [];
  if (e.pax) {
    const body = paxBody(e.pax);
    parts.push(tarHeader({ name: 'PaxHeader', type: 'x' }, body.length), ...pad(body));
  }
  const data = typeof e.data === 'string' ? Buffer.from(e.data) : e.data ?? Buffer.alloc(0);
  parts.push(tarHeader(e, e.size ?? data.length));
  if (data.length) parts.push(...pad(data));
  return Buffer.concat(parts);
}

export function tarArchive(entries: TarEntrySpec[], { end = true } = {}): Buffer {
  return Buffer.concat([...entries.map(tarEntry), ...(end ? [Buffer.alloc(1024)] : [])]);
}
