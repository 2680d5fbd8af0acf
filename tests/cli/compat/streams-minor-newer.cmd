# OLD wrote format 1.0, NEW 1.1: a warning (an OLD reader reads 1.1).
. "$(dirname "$0")/lib.sh"
stream old.mig cpu:x86-cpu:1:cpu pci0/net:virtio-net:2:net2
restamp old.mig old10.mig --minor 0
"$TOOLS/migstream-compat" old10.mig old.mig
