const { exec } = require('child_process');
exec(process.argv[2], (e, out) => console.log(out));
