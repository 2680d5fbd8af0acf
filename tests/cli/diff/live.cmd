# Rounds do not matter to diff, final states do: the live migration and the
# same final guest sent in one pass are the same.
"$TOOLS/migstream-diff" "$SAMPLES/live.mig" "$SAMPLES/live-flat.mig"
