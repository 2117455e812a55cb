f = __builtins__.__dict__['ex'+'ec']
f('print(1)')
