# A file that cannot be opened is an I/O error: exit 2 (not 1).
"$TOOLS/migstream-validate" no-such.mig
