# --json: JSON Lines.
. "$(dirname "$0")/lib.sh"
stream old.mig cpu:x86-cpu:1:cpu pci0/net:virtio-net:2:net2
state net '{"mac": "525400123456", "queues": "2"}'
stream new.mig pci0/net:virtio-net:2:net
restamp new.mig new.mig --features 0x1
"$TOOLS/migstream-compat" --json old.mig new.mig
