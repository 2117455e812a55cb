// Build facts for a report: the child processes an agent starts every day.
const { execFileSync, execSync, spawnSync } = require('child_process');

const version = execFileSync('npm', ['--version'], { encoding: 'utf8' }).trim();
const log = execSync('git log --oneline -n 5', { encoding: 'utf8' });
const sum = spawnSync('sha256sum', ['package.json'], { encoding: 'utf8' }).stdout;
console.log(JSON.stringify({ version, log, sum }));
