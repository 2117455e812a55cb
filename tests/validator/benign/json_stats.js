// Summarise a JSON file in /workspace. This never uses eval() or child_process.
const fs = require('fs');
const path = require('path');

const file = path.join('/workspace', 'data.json');
const items = JSON.parse(fs.readFileSync(file, 'utf8'));
const byCategory = items.reduce((acc, it) => {
  acc[it.category] = (acc[it.category] || 0) + it.amount;
  return acc;
}, {});
const sorted = Object.entries(byCategory).sort((a, b) => b[1] - a[1]);
for (const [cat, total] of sorted) {
  console.log(`${cat.padEnd(20)} ${total.toFixed(2)}`);
}
const ratio = sorted.length / 2;
fs.writeFileSync('/workspace/summary.json', JSON.stringify(Object.fromEntries(sorted), null, 2));
