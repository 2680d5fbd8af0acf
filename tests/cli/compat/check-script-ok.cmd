# tools/compat-check.sh on artifacts of two releases and a new build.
. "$(dirname "$0")/lib.sh"
mkdir -p artifacts/1.0 artifacts/1.1 build-streams
stream artifacts/1.0/vm.mig cpu:x86-cpu:1:cpu pci0/net:virtio-net:2:net2
stream artifacts/1.1/vm.mig cpu:x86-cpu:1:cpu pci0/net:virtio-net:3:net3
stream build-streams/vm.mig cpu:x86-cpu:1:cpu pci0/net:virtio-net:3:net3
MIGSTREAM_TOOLS=$TOOLS sh "$src/tools/compat-check.sh" artifacts build-streams
