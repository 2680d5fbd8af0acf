# Bad usage: exit 2, message on stderr.
"$TOOLS/migstream-dump"; echo "exit $?"
"$TOOLS/migstream-dump" --frobnicate "$SAMPLES/basic.mig"; echo "exit $?"
"$TOOLS/migstream-dump" one.mig two.mig; echo "exit $?" # parts of a migration: opened
"$TOOLS/migstream-dump" --page 0:1 --device cpu "$SAMPLES/basic.mig"; echo "exit $?"
"$TOOLS/migstream-dump" --summary --device cpu "$SAMPLES/basic.mig"; echo "exit $?"
"$TOOLS/migstream-dump" --page 0 "$SAMPLES/basic.mig"; echo "exit $?"
"$TOOLS/migstream-dump" --page 0:-1 "$SAMPLES/basic.mig"; echo "exit $?"
"$TOOLS/migstream-dump" "$SAMPLES/basic.mig" --device
