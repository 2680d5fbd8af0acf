# Compatible old-to-new; --both-ways finds what OLD cannot read in NEW.
. "$(dirname "$0")/lib.sh"
stream old.mig cpu:x86-cpu:1:cpu pci0/net:virtio-net:2:net2
stream new.mig cpu:x86-cpu:1:cpu pci0/net:virtio-net:3:net3
"$TOOLS/migstream-compat" --both-ways old.mig new.mig
