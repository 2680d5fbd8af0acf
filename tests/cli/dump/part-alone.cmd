# One part on its own is a stream: what it holds, every record naming part 1.
cd "$SAMPLES" && "$TOOLS/migstream-dump" --summary parts.1.mig
