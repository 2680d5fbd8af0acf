# One stream of NEW's directory changes a type.
. "$(dirname "$0")/lib.sh"
mkdir old new
state net '{"mac": 5, "queues": 2}'
stream old/a.mig cpu:x86-cpu:1:cpu pci0/net:virtio-net:2:net2
stream new/a.mig cpu:x86-cpu:1:cpu
stream new/b.mig pci0/net:virtio-net:2:net
"$TOOLS/migstream-compat" old new
