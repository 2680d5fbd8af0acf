# Overlays: each overlay's 4 KiB in overlay-<n>.bin, built from its
# parameters (FORMAT.md section 7.2), and with --view the guest-visible view
# region-0.view.img: the RAM image with the active overlay of each frame
# (HYPERCALL over REFERENCE_TSC at frame 0xa, priority 400 over 300).
"$TOOLS/migstream-replay" -q --view -o out "$SAMPLES/live.mig" || exit
ls out
od -A d -t x1 -N 24 out/overlay-0.bin   # TSC page: sequence 1, scale, offset 0
python3 -c 'print("scale for 2.5 GHz: %016x" % ((10**7 << 64) // 2500000000))'
od -A d -t x1 -N 8 out/overlay-1.bin    # Intel: vmcall; ret
dd if=out/region-0.view.img bs=4096 skip=10 count=1 2>/dev/null | cmp - out/overlay-1.bin &&
  echo "view frame 0xa = HYPERCALL overlay"
dd if=out/region-0.view.img bs=4096 skip=20 count=1 2>/dev/null | cmp - out/overlay-2.bin &&
  echo "view frame 0x14 = SYNIC_MESSAGE overlay"
cmp -l out/region-0.img out/region-0.view.img | awk '{print int(($1 - 1) / 4096)}' | uniq -c
