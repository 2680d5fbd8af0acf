/*
 * The guest program: 32-bit x86 code that keeps writing memory at a rate
 * the VMM sets. Source in guest.S; the bytes below are its assembly
 * (as --32 guest.S && objcopy -O binary -j .text), with the instructions
 * beside them.
 *
 * Memory layout (guest-physical = host offset in the memory slot; no
 * paging):
 *   0x1000  control page: u32 counter (the guest's iterations),
 *           u32 allowed (tokens: the VMM raises it at the chosen rate; the
 *           guest spins while counter == allowed), u32 working-set pages,
 *           u32 random state
 *   0x2000  this code
 *   0x100000 the working set: each iteration picks one of its pages and
 *           fills it with counter + i * 0x9e3779b9 (one time in 16: zeroes
 *           it again)
 */
#ifndef KVM_MIGRATE_GUEST_H
#define KVM_MIGRATE_GUEST_H

#include <stdint.h>

#define GUEST_CTL 0x1000u
#define GUEST_COUNTER (GUEST_CTL + 0)
#define GUEST_ALLOWED (GUEST_CTL + 4)
#define GUEST_NPAGES (GUEST_CTL + 8)
#define GUEST_SEED (GUEST_CTL + 12)
#define GUEST_ENTRY 0x2000u
#define GUEST_WORK 0x100000u

static const uint8_t guest_code[] = {
    /* 00 wait: */
    0xa1, 0x04, 0x10, 0x00, 0x00,             /* mov eax, [allowed]           */
    0x2b, 0x05, 0x00, 0x10, 0x00, 0x00,       /* sub eax, [counter]           */
    0x74, 0xf3,                               /* jz wait: no token left       */
    0xa1, 0x0c, 0x10, 0x00, 0x00,             /* mov eax, [seed]              */
    0x69, 0xc0, 0x6d, 0x4e, 0xc6, 0x41,       /* imul eax, eax, 1103515245    */
    0x05, 0x39, 0x30, 0x00, 0x00,             /* add eax, 12345               */
    0xa3, 0x0c, 0x10, 0x00, 0x00,             /* mov [seed], eax              */
    0x89, 0xc3,                               /* mov ebx, eax                 */
    0xc1, 0xe8, 0x08,                         /* shr eax, 8                   */
    0x31, 0xd2,                               /* xor edx, edx                 */
    0xf7, 0x35, 0x08, 0x10, 0x00, 0x00,       /* div dword [npages]: edx=page */
    0xc1, 0xe2, 0x0c,                         /* shl edx, 12                  */
    0x8d, 0xba, 0x00, 0x00, 0x10, 0x00,       /* lea edi, [edx + 0x100000]    */
    0xb9, 0x00, 0x04, 0x00, 0x00,             /* mov ecx, 1024 (dwords)       */
    0xf7, 0xc3, 0x00, 0x00, 0x00, 0xf0,       /* test ebx, 0xf0000000         */
    0x74, 0x13,                               /* jz zero: one time in 16      */
    0xa1, 0x00, 0x10, 0x00, 0x00,             /* mov eax, [counter]           */
    /* 4a fill: */
    0x89, 0x07,                               /* mov [edi], eax               */
    0x05, 0xb9, 0x79, 0x37, 0x9e,             /* add eax, 0x9e3779b9          */
    0x83, 0xc7, 0x04,                         /* add edi, 4                   */
    0xe2, 0xf4,                               /* loop fill                    */
    0xeb, 0x04,                               /* jmp done                     */
    /* 58 zero: */
    0x31, 0xc0,                               /* xor eax, eax                 */
    0xf3, 0xab,                               /* rep stosd                    */
    /* 5c done: */
    0xff, 0x05, 0x00, 0x10, 0x00, 0x00,       /* inc dword [counter]          */
    0xeb, 0x9c,                               /* jmp wait                     */
};

#endif
