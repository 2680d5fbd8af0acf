# The new build drops a field: the script fails.
. "$(dirname "$0")/lib.sh"
mkdir -p artifacts/1.0 build-streams
state net '{"mac": "525400123456"}'
stream artifacts/1.0/vm.mig cpu:x86-cpu:1:cpu pci0/net:virtio-net:2:net2
stream build-streams/vm.mig cpu:x86-cpu:1:cpu pci0/net:virtio-net:3:net
MIGSTREAM_TOOLS=$TOOLS sh "$src/tools/compat-check.sh" artifacts build-streams
