# corrupt.mig (one byte of page data flipped): exit 1, the message names the
# record, its offset and the checksums, and no output nor temporary
# directory is left.
here=$PWD
(cd "$SAMPLES" && exec "$TOOLS/migstream-replay" -o "$here/out" corrupt.mig); rc=$?
ls -A
exit $rc
