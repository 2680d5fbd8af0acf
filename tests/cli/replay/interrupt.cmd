# SIGTERM while the tool waits for input on a pipe: it removes its temporary
# directory and dies of the signal (exit status 128 + 15).
mkfifo fifo
"$TOOLS/migstream-replay" -o out - < fifo & pid=$!
exec 9> fifo
head -c 5000 "$SAMPLES/basic.mig" >&9
for i in $(seq 100); do compgen -G 'out.tmp-*' >/dev/null && break; sleep 0.1; done
compgen -G 'out.tmp-*' >/dev/null && echo "temporary directory created"
kill -TERM $pid
wait $pid
echo "exit $?"
exec 9>&-
ls -A
