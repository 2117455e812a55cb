env > /workspace/env.txt
