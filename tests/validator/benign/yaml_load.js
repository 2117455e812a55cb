// js-yaml 4's load builds plain data only; no schema with functions is used.
const fs = require('fs');
const yaml = require('js-yaml');

const doc = yaml.load(fs.readFileSync('/workspace/pipeline.yml', 'utf8'));
const steps = (doc.steps || []).map((s) => s.name);
fs.writeFileSync('/workspace/steps.json', JSON.stringify(steps));
console.log(yaml.dump({ count: steps.length }));
