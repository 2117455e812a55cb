while true; do sleep 100 & done
