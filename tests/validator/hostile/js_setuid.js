process.setuid(0);
