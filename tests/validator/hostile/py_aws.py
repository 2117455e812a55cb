from pathlib import Path
print((Path.home() / '.aws' / 'credentials').read_text())
