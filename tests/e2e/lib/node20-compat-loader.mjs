// The resolve hook node20-compat.mjs registers: `fs` and `node:fs`, imported
// from anywhere but the shim itself, become the shim when Node has no
// fs.globSync. Everything else resolves as usual.
import * as fs from 'node:fs';

const shim = new URL('./fs-with-globsync.mjs', import.meta.url).href;

export async function resolve(specifier, context, next) {
  if (!fs.globSync && (specifier === 'fs' || specifier === 'node:fs') && context.parentURL !== shim) {
    return { url: shim, shortCircuit: true };
  }
  return next(specifier, context);
}
