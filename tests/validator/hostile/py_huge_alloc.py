buf = bytearray(10**12)
