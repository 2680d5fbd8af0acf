# One flipped byte of page data in A: exit 2, nothing on standard output, and
# the reader's message naming stream A, the record, its offset and the checksums.
cd "$SAMPLES" && "$TOOLS/migstream-diff" corrupt.mig basic.mig
