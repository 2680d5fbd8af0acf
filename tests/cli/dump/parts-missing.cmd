# Two of the three parts: refused, naming the migration and the count.
cd "$SAMPLES" && "$TOOLS/migstream-dump" parts.0.mig parts.1.mig
