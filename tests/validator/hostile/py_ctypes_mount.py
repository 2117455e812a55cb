import ctypes
libc = ctypes.CDLL('libc.so.6')
libc.mount(b'none', b'/mnt', b'tmpfs', 0, None)
