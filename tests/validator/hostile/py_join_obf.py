m = __import__(''.join(['s','u','b','p','r','o','c','e','s','s']))
m.call(['ls'])
