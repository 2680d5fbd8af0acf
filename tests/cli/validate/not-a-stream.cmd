# Not a libmigstream stream (bad magic), and an empty file: invalid, exit 1.
echo "hello, world" >text.txt
: >empty.mig
"$TOOLS/migstream-validate" empty.mig; echo "exit $?"
"$TOOLS/migstream-validate" text.txt
