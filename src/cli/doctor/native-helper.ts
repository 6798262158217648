// The native helper (vtc-runtime): prebuilt, built, or buildable on first use (src/runtime/native.ts decides which).
import { accessSync, constants } from 'node:fs';
import { findOnPath } from '../../path.ts';
import { chooseRuntime } from '../../runtime/native.ts';
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
  const { path, kind, reason } = chooseRuntime();
  if (kind !== 'build') {
    if (executable(path)) return { id: ID, title: TITLE, status: 'ok', summary: `${path} (${kind === 'prebuilt' ? reason : 'built on this machine'})` };
    return { id: ID, title: TITLE, status: 'fail', code: 'NATIVE_HELPER_NOT_EXECUTABLE', summary: `${path} cannot be executed (a file system mounted noexec?)`,
      fix: 'install the project on a file system that allows executables' };
  }
  const cc = process.env.CC || 'cc';
  const compiler = findOnPath(cc);
  if (compiler) return { id: ID, title: TITLE, status: 'ok', summary: `${reason}, with ${compiler}, on first use` };
  return { id: ID, title: TITLE, status: 'fail', code: 'NATIVE_BUILD_FAILED', summary: `${reason}, and there is no C compiler ("${cc}")`,
    fix: 'sudo apt-get install gcc libc6-dev (Fedora: sudo dnf install gcc glibc-static); it is then built on first use' };
}
