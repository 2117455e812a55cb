print(f"{__import__('os').system('id')}")
