// `node --import ./lib/node20-compat.mjs`: lets packages written for Node 22
// run on this machine's Node 20. The newest conformance releases import
// `globSync` from `fs`, which Node 20 lacks (it came in 22.0); this hook
// resolves their `fs` to fs-with-globsync.mjs, which re-exports node:fs and
// adds a globSync for the patterns the suite uses.
import { register } from 'node:module';

register('./node20-compat-loader.mjs', import.meta.url);
