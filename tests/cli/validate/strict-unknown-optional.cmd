# --strict turns the warning into a failure: exit 1.
"$TOOLS/migstream-validate" --strict "$SAMPLES/unknown-optional.mig"
