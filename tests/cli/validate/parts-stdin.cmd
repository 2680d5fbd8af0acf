# One part through a pipe as standard input, the others as files: the
# inputs of one stream, in any order, "-" among them.
cd "$SAMPLES" && cat parts.0.mig | "$TOOLS/migstream-validate" parts.2.mig - parts.1.mig
