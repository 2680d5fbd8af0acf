# Streams packed by migstream-pack from one image, whose devices alone differ:
# cpu#0 goes from schema version 1 to 2, its rip from 65520 to 31744 and its
# regs array gets a third element; pci0/nic#0 exists in B only. Map keys are
# compared whatever their order ("rax" comes last in B).
P=$TOOLS/migstream-pack
printf "guest memory" > ram.img && truncate -s 64K ram.img
printf "{\"rip\": 65520, \"rax\": 1, \"regs\": [1, 2]}" > a.json
printf "{\"rip\": 31744, \"regs\": [1, 2, 3], \"rax\": 1}" > b.json
printf "{\"mac\": \"52:54:00:12:34:56\"}" > nic.json
"$P" -q -o a.mig --device cpu:x86-cpu:1:a.json ram.img || exit
"$P" -q -o b.mig --device cpu:x86-cpu:2:b.json --device pci0/nic:virtio-net:1:nic.json ram.img || exit
"$TOOLS/migstream-diff" a.mig b.mig; echo "exit $?"
"$TOOLS/migstream-diff" --json a.mig b.mig
