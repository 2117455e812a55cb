cmd="$1"
sh -c "$cmd"
