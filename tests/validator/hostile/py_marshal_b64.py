import marshal, base64
code = marshal.loads(base64.b64decode(open("/workspace/blob.txt").read()))
