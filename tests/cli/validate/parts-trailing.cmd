# A byte after part 1's END: the error names the part, its END and the byte.
cp "$SAMPLES"/parts.?.mig . && printf x >>parts.1.mig
"$TOOLS/migstream-validate" parts.0.mig parts.1.mig parts.2.mig
