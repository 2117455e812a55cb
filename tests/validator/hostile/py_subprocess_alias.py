import subprocess as sp
sp.Popen(user_cmd, shell=True)
