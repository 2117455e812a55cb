python3 -c 'import os, sys; os.system(sys.argv[1])' "$1"
