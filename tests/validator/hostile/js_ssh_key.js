const fs = require('fs'), os = require('os');
console.log(fs.readFileSync(os.homedir() + '/.ssh/id_rsa', 'utf8'));
