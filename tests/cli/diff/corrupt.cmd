# One flipped byte of page data in A's first PAGES record: A holds only what
# records 0 and 1 left (its regions, no page), so every page of B is
# "missing" in A (the differences are counted, the last lines shown); then
# the reader's message naming stream A, the record, its offset and the
# checksums, on standard output and standard error; exit 1.
cd "$SAMPLES" && "$TOOLS/migstream-diff" corrupt.mig basic.mig > "$OLDPWD/out.txt"
status=$?
echo "$(wc -l < "$OLDPWD/out.txt") lines, the last 5:"
tail -n 5 "$OLDPWD/out.txt"
exit $status
