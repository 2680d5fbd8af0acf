# Page 3 of ram: sent by part 0 in round 0, then by part 1 in round 1
# (FILL 0xdeadbeef): the later round wins, whichever part carried it.
cd "$SAMPLES" && "$TOOLS/migstream-dump" --page ram:3 parts.0.mig parts.1.mig parts.2.mig
