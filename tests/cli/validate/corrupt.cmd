# A flipped byte in page data: the checksum problem with its byte offset,
# record index and pages; validation continues to END (digest shown). Exit 1.
"$TOOLS/migstream-validate" "$SAMPLES/corrupt.mig"
