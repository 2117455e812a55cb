import { readFile, writeFile } from 'node:fs/promises';
import { createHash } from 'node:crypto';

const text = await readFile('/workspace/input.txt', 'utf8');
const words = text.toLowerCase().match(/[a-z']+/g) ?? [];
const freq = new Map();
for (const w of words) freq.set(w, (freq.get(w) ?? 0) + 1);
const top = [...freq].sort((a, b) => b[1] - a[1]).slice(0, 10);
const digest = createHash('sha256').update(text).digest('hex');
await writeFile('/workspace/top.json', JSON.stringify({ top, digest }));
const home = process.env.HOME;
console.log(`${words.length} words; home=${home}`);
let n = 0;
while (true) {
  n++;
  if (n > 100) break;
}
