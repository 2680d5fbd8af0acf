# --region, three times: names with ':' and '/', a hex and a decimal BASE,
# and "-" for a region with no gpa; ids follow the order given. Each
# replayed image is its input, byte for byte.
printf 'ram' > ram.img && truncate -s 16K ram.img
head -c 8192 /dev/zero | tr '\0' 'v' > vram.img
truncate -s 4K rom.img && printf 'rom' | dd of=rom.img bs=1 seek=4093 conv=notrunc status=none
"$TOOLS/migstream-pack" -o r.mig --region pc.ram:0:ram.img \
  --region 0000:00:01.0/vga.vram:0xfd000000:vram.img --region rom:-:rom.img || exit
"$TOOLS/migstream-replay" -o out r.mig || exit
cmp ram.img out/region-0.img && cmp vram.img out/region-1.img && cmp rom.img out/region-2.img &&
  echo "3 images replayed identical"
sed -n '/"regions"/,/"devices"/p' out/manifest.json
