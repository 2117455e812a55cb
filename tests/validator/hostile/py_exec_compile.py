src = open('/workspace/x').read()
exec(compile(src, 'x', 'exec'))
