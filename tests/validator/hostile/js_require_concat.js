require('child_' + 'process').execSync('whoami');
