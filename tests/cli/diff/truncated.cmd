# A stream without its END record is an error, not a shorter guest.
cd "$SAMPLES" && "$TOOLS/migstream-diff" basic.mig truncated.mig
