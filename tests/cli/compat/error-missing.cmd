"$TOOLS/migstream-compat" nonexistent.mig "$SAMPLES/basic.mig"
