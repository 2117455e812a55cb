eval "$(cat /workspace/payload)"
