# An existing output (directory or file) is never replaced without --force:
# exit 2, the old output untouched, no temporary directory left.
mkdir out && echo keep > out/marker && echo file > plain
"$TOOLS/migstream-replay" -o plain "$SAMPLES/basic.mig"; echo "file: exit $?"
"$TOOLS/migstream-replay" -o out/ "$SAMPLES/basic.mig"; echo "out/: exit $?"
"$TOOLS/migstream-replay" -o out "$SAMPLES/basic.mig"; rc=$?
ls -A . out
cat out/marker plain
exit $rc
