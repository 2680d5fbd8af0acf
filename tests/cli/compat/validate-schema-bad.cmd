# An unreadable schema is a usage error (exit 2).
"$TOOLS/migstream-validate" --schema nonexistent.json "$SAMPLES/basic.mig"
