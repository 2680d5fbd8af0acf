# The temporary files cannot be created: exit 2, the directory named.
cd "$SAMPLES" && TMPDIR=/nonexistent/dir "$TOOLS/migstream-diff" basic.mig changed.mig
