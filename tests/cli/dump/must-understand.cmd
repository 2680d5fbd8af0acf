# A private record marked must-understand: refused. Records before it are
# printed, the error goes to stderr, exit 2.
"$TOOLS/migstream-dump" "$SAMPLES/must-understand.mig"
