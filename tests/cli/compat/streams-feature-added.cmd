# NEW's streams set required feature bits FILL and OVERLAYS.
. "$(dirname "$0")/lib.sh"
stream old.mig cpu:x86-cpu:1:cpu pci0/net:virtio-net:2:net2
restamp old.mig new.mig --features 0xa
"$TOOLS/migstream-compat" old.mig new.mig
