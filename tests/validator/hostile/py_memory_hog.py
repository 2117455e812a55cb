data = []
while True:
    data.append('x' * 1024 * 1024)
