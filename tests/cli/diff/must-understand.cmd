# An unknown record marked must-understand makes the stream unreadable.
cd "$SAMPLES" && "$TOOLS/migstream-diff" must-understand.mig basic.mig
