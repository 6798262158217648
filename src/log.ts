// Logging goes through `debug`: DEBUG=container:* shows everything,
// DEBUG=container:runtime one layer.
import createDebug from 'debug';

export function logger(layer: string): createDebug.Debugger {
  return createDebug(`container:${layer}`);
}
