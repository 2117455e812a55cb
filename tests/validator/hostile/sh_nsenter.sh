nsenter --target 1 --mount --uts --ipc --net --pid -- bash
