import os
os.system(input("command: "))
