# NEW's virtio-net lost "queues" (and a nested cpu register).
. "$(dirname "$0")/lib.sh"
stream old.mig cpu:x86-cpu:1:cpu pci0/net:virtio-net:2:net2
state net '{"mac": "525400123456"}'
state cpu2 '{"rip": 65520, "rax": 1, "flags": [true, false], "regs": {"cr0": 17}}'
stream new.mig cpu:x86-cpu:1:cpu2 pci0/net:virtio-net:3:net
"$TOOLS/migstream-compat" old.mig new.mig
