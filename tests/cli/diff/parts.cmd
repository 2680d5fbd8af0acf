# A migration in parts against the same migration in one stream (live.mig):
# the same guest; only the format minor and the PARTS feature differ.
cd "$SAMPLES" && "$TOOLS/migstream-diff" live.mig parts.0.mig,parts.1.mig,parts.2.mig
