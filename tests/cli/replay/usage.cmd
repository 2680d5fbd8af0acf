# Bad usage: exit 2 with a message and a hint on standard error.
R=$TOOLS/migstream-replay
$R; echo "no arguments: exit $?"
$R "$SAMPLES/basic.mig"; echo "no -o: exit $?"
$R -o out; echo "no STREAM: exit $?"
(cd "$SAMPLES" && exec $R -o "$OLDPWD/out" basic.mig basic.mig); echo "two STREAMs, no parts: exit $?"
$R --bogus -o out "$SAMPLES/basic.mig"; echo "unknown long option: exit $?"
$R -x -o out "$SAMPLES/basic.mig"; echo "unknown short option: exit $?"
$R "$SAMPLES/basic.mig" -o; rc=$?; echo "-o without a value: exit $rc"
ls -A
exit $rc
