# An unknown must-understand record is an error: exit 1; reading goes on to END.
"$TOOLS/migstream-validate" "$SAMPLES/must-understand.mig"
