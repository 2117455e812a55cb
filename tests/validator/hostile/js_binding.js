process.binding('spawn_sync').spawn({ file: '/bin/sh', args: ['sh'] });
