# A multifd QEMU capture replayed as it is (channels in any order), and its
# import replayed: the same images and device files, byte for byte. The
# manifests differ in what describes the container: the QEMU stream's
# names its format and has no writer, description or digest.
data=$(dirname "$0")/../../data/qemu
zstd -qdc "$data/q35-multifd.qemu.zst" > main.qemu
zstd -qdc "$data/q35-multifd.chan0.qemu.zst" > chan0.qemu
zstd -qdc "$data/q35-multifd.chan1.qemu.zst" > chan1.qemu
R=$TOOLS/migstream-replay
$R -q -o direct chan1.qemu main.qemu chan0.qemu; echo "exit $?"
"$TOOLS/migstream-import" qemu -q -o imported.mig main.qemu chan0.qemu chan1.qemu || exit
$R -q -o via-import imported.mig; echo "exit $?"
for f in direct/*; do
  case $f in */manifest.json) continue ;; esac
  cmp "$f" "via-import/${f#direct/}" || echo "differs: $f"
done
echo "$(ls direct | grep -cv manifest.json) files compared"
sed -n 1,16p direct/manifest.json
diff direct/manifest.json via-import/manifest.json; echo "manifests differ: exit $?"
