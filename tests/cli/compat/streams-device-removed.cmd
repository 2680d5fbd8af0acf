# NEW no longer has the virtio-net device.
. "$(dirname "$0")/lib.sh"
stream old.mig cpu:x86-cpu:1:cpu pci0/net:virtio-net:2:net2
stream new.mig cpu:x86-cpu:1:cpu
"$TOOLS/migstream-compat" old.mig new.mig
