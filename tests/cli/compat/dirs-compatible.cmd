# Directories of streams: every stream of a side is learned.
. "$(dirname "$0")/lib.sh"
mkdir old new
stream old/a.mig cpu:x86-cpu:1:cpu pci0/net:virtio-net:2:net2
stream old/b.mig cpu:x86-cpu:1:cpu
stream new/a.mig cpu:x86-cpu:1:cpu pci0/net:virtio-net:3:net3
echo "not a stream" >new/README
"$TOOLS/migstream-compat" old new
