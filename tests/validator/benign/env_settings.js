// Read configuration from a few named environment variables and a JSON file.
const fs = require('fs');
const path = require('path');

const port = Number(process.env.PORT || 3000);
const mode = process.env['NODE_ENV'] ?? 'development';
const file = path.join('/workspace', 'settings.json');
const settings = fs.existsSync(file) ? JSON.parse(fs.readFileSync(file, 'utf8')) : {};
const merged = { port, mode, ...settings };
fs.writeFileSync(path.join('/workspace', 'effective.json'), JSON.stringify(merged, null, 2));
console.log(`port=${merged.port} mode=${merged.mode}`);
