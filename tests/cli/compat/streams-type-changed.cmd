# NEW writes "queues" as text and the flags as integers.
. "$(dirname "$0")/lib.sh"
stream old.mig cpu:x86-cpu:1:cpu pci0/net:virtio-net:2:net2
state net '{"mac": "525400123456", "queues": "2"}'
state cpu2 '{"rip": 65520, "rax": 1, "flags": [1, 0], "regs": {"cr0": 17, "efer": 0}}'
stream new.mig cpu:x86-cpu:1:cpu2 pci0/net:virtio-net:2:net
"$TOOLS/migstream-compat" old.mig new.mig
