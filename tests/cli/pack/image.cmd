# One image made by hand (64 KiB: "hello" at byte 0, page 3 all 0xAB, a 0x01
# as the last byte, the rest a hole) packed as region "ram" at gpa 0 with
# 4 KiB pages, then replayed: the same bytes come back.
truncate -s 64K img
printf 'hello' | dd of=img conv=notrunc status=none
head -c 4096 /dev/zero | tr '\0' '\253' | dd of=img bs=4096 seek=3 conv=notrunc status=none
printf '\001' | dd of=img bs=1 seek=65535 conv=notrunc status=none
"$TOOLS/migstream-pack" -o img.mig img || exit
echo "stream: $(stat -c %s img.mig) bytes"
"$TOOLS/migstream-replay" -o out img.mig || exit
cmp img out/region-0.img && echo "replayed image = img"
sha256sum < img; sha256sum < out/region-0.img
cat out/manifest.json
