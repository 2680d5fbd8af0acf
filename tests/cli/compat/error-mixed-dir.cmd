# A directory holding streams and schema files.
mkdir d && cp "$SAMPLES/basic.mig" d/ && echo "{}" >d/s.json
"$TOOLS/migstream-compat" d d
