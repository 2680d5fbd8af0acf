# The same as JSON Lines: each problem with its part.
cd "$SAMPLES" && "$TOOLS/migstream-validate" --json clash.1.mig clash.0.mig
