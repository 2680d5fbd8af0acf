# Pages 200..215 first sent with stale 0x77 bytes, then with the real ones
# (data or zero): only the last copy counts, so the state is the same.
"$TOOLS/migstream-diff" "$SAMPLES/basic.mig" "$SAMPLES/rewritten.mig"
