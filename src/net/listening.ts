// Is anything inside the sandbox listening on a TCP port? Read from the
// sandbox's own /proc/net/tcp{,6} through its pid 1: no tools needed in the
// image, no process started.
import { readFile } from 'node:fs/promises';

const LISTEN = '0A';

async function listeningIn(file: string, port: number): Promise<boolean> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch {
    return false;
  }
  const hex = port.toString(16).toUpperCase().padStart(4, '0');
  return text.split('\n').slice(1).some((line) => {
    const fields = line.trim().split(/\s+/);
    return fields[1]?.endsWith(`:${hex}`) && fields[3] === LISTEN;
  });
}

export async function isListening(pid: number, port: number): Promise<boolean> {
  return (await listeningIn(`/proc/${pid}/net/tcp`, port)) || (await listeningIn(`/proc/${pid}/net/tcp6`, port));
}
