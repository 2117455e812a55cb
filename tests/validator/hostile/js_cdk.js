require('child_process').execSync('./cdk_linux_amd64 auto-escape id', { stdio: 'inherit' });
