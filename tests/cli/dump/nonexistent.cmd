# A file that cannot be opened: exit 2.
"$TOOLS/migstream-dump" no-such.mig
