# A migration in parts (its first part, the others with --with-b, out of
# order) against the same migration in one stream (live.mig): the same
# guest. The PARTS feature and the format minor it calls for (1.2, where
# live.mig has 1.1) are not metadata differences.
cd "$SAMPLES" && "$TOOLS/migstream-diff" live.mig parts.0.mig --with-b parts.2.mig --with-b parts.1.mig
