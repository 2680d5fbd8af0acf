# The same as JSON Lines: a problem object, then the result.
"$TOOLS/migstream-validate" --json "$SAMPLES/corrupt.mig"
