# Part 0 of one migration and part 1 of another: refused, both ids named.
cd "$SAMPLES" && "$TOOLS/migstream-validate" clash.0.mig other.1.mig
