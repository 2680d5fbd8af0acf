# NEW writes virtio-net version 1 where OLD wrote 2.
. "$(dirname "$0")/lib.sh"
stream old.mig cpu:x86-cpu:1:cpu pci0/net:virtio-net:2:net2
stream new.mig cpu:x86-cpu:1:cpu pci0/net:virtio-net:1:net2
"$TOOLS/migstream-compat" old.mig new.mig
