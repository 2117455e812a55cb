const a = [];
while (true) { a.push(Buffer.alloc(1 << 20)); }
