// The Node running the tests: the environment, the pool and the CLI refuse one older than they support.
import { ContainerError } from '../../errors.ts';
import { assertSupportedNode, MINIMUM_NODE } from '../../node-version.ts';
import { fromError, type CheckResult } from './check.ts';

export function checkNodeVersion(): CheckResult {
  try {
    assertSupportedNode();
    return { id: 'node', title: 'Node', status: 'ok', summary: `${process.version.slice(1)} (${MINIMUM_NODE} or newer needed)` };
  } catch (err) {
    if (!(err instanceof ContainerError)) throw err;
    return fromError('node', 'Node', 'fail', err);
  }
}
