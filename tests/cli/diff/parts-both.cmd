# Two sets of the same parts, in other orders, on both sides: the same.
cd "$SAMPLES" && "$TOOLS/migstream-diff" --with-a parts.0.mig --with-a parts.1.mig \
    --with-b parts.0.mig --with-b parts.2.mig parts.2.mig parts.1.mig
