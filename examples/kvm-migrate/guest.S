/* The guest program of kvm-migrate; guest.h holds its bytes, assembled with
 *   as --32 -o guest.o guest.S && objcopy -O binary -j .text guest.o guest.bin
 * (32-bit protected mode, flat segments, no paging, interrupts off). */
    .code32
    .set CTL, 0x1000
    .set COUNTER, CTL+0
    .set ALLOWED, CTL+4
    .set NPAGES, CTL+8
    .set SEED, CTL+12
    .set WORK, 0x100000
    .org 0
start:
wait:
    mov ALLOWED, %eax
    sub COUNTER, %eax        /* allowed - counter, unsigned */
    jz wait                  /* no token left: spin */
    mov SEED, %eax           /* seed = seed * 1103515245 + 12345 */
    imul $1103515245, %eax, %eax
    add $12345, %eax
    mov %eax, SEED
    mov %eax, %ebx           /* keep it: its top bits pick the action */
    shr $8, %eax
    xor %edx, %edx
    divl NPAGES              /* edx = page index in the working set */
    shl $12, %edx
    lea WORK(%edx), %edi
    mov $1024, %ecx
    test $0xf0000000, %ebx   /* one time in 16: zero the page again */
    jz zero
    mov COUNTER, %eax        /* else fill it with counter + i * golden ratio */
fill:
    mov %eax, (%edi)
    add $0x9e3779b9, %eax
    add $4, %edi
    loop fill
    jmp done
zero:
    xor %eax, %eax
    rep stosl
done:
    incl COUNTER
    jmp wait
