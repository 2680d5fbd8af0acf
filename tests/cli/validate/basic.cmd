# A good stream: no problems, the digest, exit 0.
"$TOOLS/migstream-validate" "$SAMPLES/basic.mig"
