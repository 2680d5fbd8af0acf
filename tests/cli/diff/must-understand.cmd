# An unknown record marked must-understand stops the reading of A after its
# first record: A is compared as far as it was read (no region), exit 1.
cd "$SAMPLES" && "$TOOLS/migstream-diff" must-understand.mig basic.mig
