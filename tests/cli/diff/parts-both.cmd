# Two sets of the same parts, in other orders: the same.
cd "$SAMPLES" && "$TOOLS/migstream-diff" parts.2.mig,parts.0.mig,parts.1.mig parts.1.mig,parts.0.mig,parts.2.mig
