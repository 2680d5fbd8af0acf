# A part of a libmigstream migration beside a stream that is no part (a
# single stream): refused by name before anything is printed.
cd "$SAMPLES" && "$TOOLS/migstream-dump" --summary parts.0.mig basic.mig
