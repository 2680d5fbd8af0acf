# The same stream on both sides: compatible.
. "$(dirname "$0")/lib.sh"
stream old.mig cpu:x86-cpu:1:cpu pci0/net:virtio-net:2:net2
"$TOOLS/migstream-compat" old.mig old.mig
