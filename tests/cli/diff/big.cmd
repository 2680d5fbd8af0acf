# A 2 GiB guest on each side through pipes (gen-streams --big 2: one 0x5a page
# per MiB, the rest zero): read as streams, never held whole; same.
"$GEN" --big 2 | "$TOOLS/migstream-diff" - <("$GEN" --big 2)
