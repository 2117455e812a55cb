globalThis['ev' + 'al']('1+1');
