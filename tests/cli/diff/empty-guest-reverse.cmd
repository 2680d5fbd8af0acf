# empty-guest vs basic: everything exists in B only.
"$TOOLS/migstream-diff" "$SAMPLES/empty-guest.mig" "$SAMPLES/basic.mig"
