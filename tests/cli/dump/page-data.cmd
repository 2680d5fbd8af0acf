# A DATA page by region name: the hexdump of its only copy (basic pc.ram page 2).
"$TOOLS/migstream-dump" --page pc.ram:2 "$SAMPLES/basic.mig"
