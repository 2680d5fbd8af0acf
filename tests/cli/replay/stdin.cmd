# "-" reads standard input: from a redirected file (size known) and from a
# pipe (size unknown); the output is the same as from the file.
R=$TOOLS/migstream-replay
$R -o file "$SAMPLES/basic.mig" || exit
$R -o redirected - < "$SAMPLES/basic.mig" || exit
cat "$SAMPLES/basic.mig" | $R -o piped - || exit
diff -r file redirected && diff -r file piped && echo "same output from a file, a redirection and a pipe"
ls -A
