import ast
from functools import reduce
import operator

values = ast.literal_eval(open("/workspace/values.txt").read())
print(reduce(operator.mul, values, 1))
compiled = [v * 2 for v in values]
system_name = "linux"
print({"system": system_name, "run": 3, "compile": False}["run"])
