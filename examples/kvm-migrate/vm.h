/*
 * A minimal KVM virtual machine: one memory slot at guest-physical 0, one
 * x86 vCPU in 32-bit protected mode without paging, running on its own
 * thread. Just enough VMM for kvm-migrate.c to migrate it.
 */
#ifndef KVM_MIGRATE_VM_H
#define KVM_MIGRATE_VM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <linux/kvm.h>

typedef struct vm vm;

/* The vCPU's architectural state, as KVM hands it out. */
typedef struct vcpu_state {
    struct kvm_regs regs;
    struct kvm_sregs sregs;
    struct kvm_fpu fpu;
} vcpu_state;

/* Whether KVM can be used here; if not, @p why says what is missing. */
bool vm_kvm_usable(char *why, size_t why_len);

/* A VM with @p mem_bytes of zeroed memory (a multiple of 4096). With
 * @p dirty_log, KVM logs guest writes to it (KVM_MEM_LOG_DIRTY_PAGES).
 * NULL on failure, with the reason in @p err. */
vm *vm_create(uint64_t mem_bytes, bool dirty_log, char *err, size_t err_len);
void vm_free(vm *v);

uint8_t *vm_mem(vm *v);
uint64_t vm_mem_size(const vm *v);

/* Puts the vCPU at the start state of the guest program: 32-bit flat
 * segments, no paging, interrupts off, eip = @p entry. */
int vm_reset_vcpu(vm *v, uint32_t entry);

/* Starts or resumes the vCPU thread. */
int vm_run(vm *v);
/* Stops the vCPU (KVM_RUN returns) and waits for its thread to end. Returns
 * -1 with the reason if the vCPU had stopped on its own (a guest fault). */
int vm_pause(vm *v);

/* KVM_GET_DIRTY_LOG: fills @p bitmap (one bit per 4 KiB page, KVM's
 * layout, (pages + 63) / 64 words) and clears the log. */
int vm_dirty_log(vm *v, uint64_t *bitmap);

int vm_get_state(vm *v, vcpu_state *s);
int vm_set_state(vm *v, const vcpu_state *s);

/* The last error message. */
const char *vm_error(const vm *v);

#endif
