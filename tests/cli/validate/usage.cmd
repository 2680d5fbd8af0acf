# Bad usage: exit 2, message on stderr.
"$TOOLS/migstream-validate"; echo "exit $?"
"$TOOLS/migstream-validate" --frobnicate "$SAMPLES/basic.mig"; echo "exit $?"
"$TOOLS/migstream-validate" one.mig two.mig # parts of a migration: opened
