import { spawn as s } from 'node:child_process';
s('sh', ['-c', 'id']);
