# A stream without its END record is damaged, not a shorter guest: what it
# holds is compared, then where it ends is said; exit 1.
cd "$SAMPLES" && "$TOOLS/migstream-diff" basic.mig truncated.mig
