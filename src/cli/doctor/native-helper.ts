// The native helper (native/build/vtc-runtime): built, or buildable on first use.
import { accessSync, constants } from 'node:fs';
import { findOnPath } from '../../path.ts';
import { runtimeBinaryPath as binary } from '../../runtime/native.ts';
import type { CheckResult } from './check.ts';

const ID = 'native-helper';
const TITLE = 'native helper';

function executable(path: string): boolean {
  try {
    accessSync(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

export function checkNativeHelper(): CheckResult {
  const cc = process.env.CC || 'cc';
  const compiler = findOnPath(cc);
  if (executable(binary)) return { id: ID, title: TITLE, status: 'ok', summary: `${binary} is built${compiler ? ` (C compiler: ${compiler})` : ''}` };
  if (compiler) {
    return { id: ID, title: TITLE, status: 'warn', summary: `${binary} is not built yet; it is built with ${compiler} on first use`, fix: 'npm run build:native' };
  }
  return { id: ID, title: TITLE, status: 'fail', code: 'NATIVE_BUILD_FAILED', summary: `${binary} is not built and there is no C compiler ("${cc}") to build it`,
    fix: 'sudo apt-get install gcc libc6-dev (Fedora: sudo dnf install gcc), then: npm run build:native' };
}
