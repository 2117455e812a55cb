const { exec } = require('child_process');
exec('id', (e, out) => console.log(out));
