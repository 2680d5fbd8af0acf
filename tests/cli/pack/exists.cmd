# An existing output is never replaced without --force (exit 2, untouched);
# with --force it is. No temporary file is left.
truncate -s 4K img && echo keep > out.mig
"$TOOLS/migstream-pack" -o out.mig img; rc=$?
cat out.mig
"$TOOLS/migstream-pack" --force -o out.mig img && echo "--force: replaced, $(stat -c %s out.mig) bytes"
ls -A
exit $rc
