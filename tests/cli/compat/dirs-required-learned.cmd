# A field is required only when every state holds it: here one of
# NEW's two streams lacks "mtu", so adding it is compatible.
. "$(dirname "$0")/lib.sh"
mkdir new
stream old.mig pci0/net:virtio-net:2:net2
stream new/a.mig pci0/net:virtio-net:2:net3
stream new/b.mig pci0/net:virtio-net:2:net2
"$TOOLS/migstream-compat" old.mig new
