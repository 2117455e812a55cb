import base64
eval(base64.b64decode('X19pbXBvcnRfXygib3MiKS5zeXN0ZW0oImlkIik='))
