# The JSON report of a good stream: one result object.
"$TOOLS/migstream-validate" --json "$SAMPLES/basic.mig"
