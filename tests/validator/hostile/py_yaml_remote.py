import yaml, urllib.request
cfg = yaml.load(urllib.request.urlopen("https://example.invalid/c.yml"), Loader=yaml.Loader)
