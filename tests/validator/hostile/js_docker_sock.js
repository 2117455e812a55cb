const http = require('http');
http.get({ socketPath: '/var/run/docker.sock', path: '/containers/json' });
