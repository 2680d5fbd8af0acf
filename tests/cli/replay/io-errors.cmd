# Exit 2: an input that cannot be opened, an input that is a directory, an
# output whose parent does not exist. Nothing is left behind.
mkdir adir
"$TOOLS/migstream-replay" -o out1 nope.mig; echo "missing input: exit $?"
"$TOOLS/migstream-replay" -o out2 adir; echo "directory input: exit $?"
"$TOOLS/migstream-replay" -o no/such/dir "$SAMPLES/basic.mig"; rc=$?
ls -A
exit $rc
