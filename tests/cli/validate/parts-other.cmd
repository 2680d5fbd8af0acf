# Part 0 of one migration and part 1 of another: inputs that make no stream,
# refused before anything is checked (exit 2), both ids named.
cd "$SAMPLES" && "$TOOLS/migstream-validate" clash.0.mig other.1.mig
