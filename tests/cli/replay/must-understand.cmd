# A record the library does not know, marked must-understand: exit 1,
# nothing left.
here=$PWD
(cd "$SAMPLES" && exec "$TOOLS/migstream-replay" -o "$here/out" must-understand.mig); rc=$?
ls -A
exit $rc
