/*
 * The KVM side of kvm-migrate (vm.h). Everything is plain KVM API: no
 * in-kernel interrupt controller (the guest runs with interrupts off), one
 * memory slot, one vCPU.
 */
#define _GNU_SOURCE
#include "vm.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

struct vm {
    int kvm, fd, vcpu;
    uint8_t *mem;
    uint64_t mem_size;
    struct kvm_run *run;
    size_t run_size;
    pthread_t thread;
    bool running;
    atomic_bool stop;
    int fault;       /* set by the vCPU thread when the guest stopped on its own */
    char fault_msg[160];
    char err[256];
};

static int fail(vm *v, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(v->err, sizeof v->err, fmt, ap);
    va_end(ap);
    return -1;
}

const char *vm_error(const vm *v)
{
    return v->err;
}

bool vm_kvm_usable(char *why, size_t why_len)
{
    int fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);
    if (fd < 0) {
        snprintf(why, why_len, "/dev/kvm: %s", strerror(errno));
        return false;
    }
    int api = ioctl(fd, KVM_GET_API_VERSION, 0);
    bool ok = api == KVM_API_VERSION && ioctl(fd, KVM_CHECK_EXTENSION, KVM_CAP_IMMEDIATE_EXIT) > 0;
    if (!ok)
        snprintf(why, why_len, "/dev/kvm: API version %d or no KVM_CAP_IMMEDIATE_EXIT", api);
    close(fd);
    return ok;
}

/* The pause signal only has to interrupt KVM_RUN; its handler does nothing. */
static void on_kick(int sig)
{
    (void)sig;
}

vm *vm_create(uint64_t mem_bytes, bool dirty_log, char *err, size_t err_len)
{
    vm *v = calloc(1, sizeof *v);
    if (!v) {
        snprintf(err, err_len, "out of memory");
        return NULL;
    }
    v->kvm = v->fd = v->vcpu = -1;
    v->mem = MAP_FAILED;
    v->run = MAP_FAILED;

    struct sigaction sa = {.sa_handler = on_kick}; /* no SA_RESTART: KVM_RUN must return */
    sigemptyset(&sa.sa_mask);
    if (sigaction(SIGUSR1, &sa, NULL) < 0) {
        fail(v, "sigaction: %s", strerror(errno));
        goto out;
    }
    if ((v->kvm = open("/dev/kvm", O_RDWR | O_CLOEXEC)) < 0) {
        fail(v, "/dev/kvm: %s", strerror(errno));
        goto out;
    }
    if (ioctl(v->kvm, KVM_GET_API_VERSION, 0) != KVM_API_VERSION) {
        fail(v, "/dev/kvm: unexpected KVM API version");
        goto out;
    }
    if ((v->fd = ioctl(v->kvm, KVM_CREATE_VM, 0)) < 0) {
        fail(v, "KVM_CREATE_VM: %s", strerror(errno));
        goto out;
    }
    /* Intel needs a TSS area below 4 GiB for its real-mode emulation; set it
     * above guest memory so it never overlaps the slot. */
    if (ioctl(v->fd, KVM_SET_TSS_ADDR, 0xfffbd000ul) < 0) {
        fail(v, "KVM_SET_TSS_ADDR: %s", strerror(errno));
        goto out;
    }
    v->mem_size = mem_bytes;
    v->mem = mmap(NULL, mem_bytes, PROT_READ | PROT_WRITE,
                  MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (v->mem == MAP_FAILED) {
        fail(v, "cannot map %llu bytes of guest memory: %s", (unsigned long long)mem_bytes,
             strerror(errno));
        goto out;
    }
    struct kvm_userspace_memory_region slot = {
        .slot = 0,
        .flags = dirty_log ? KVM_MEM_LOG_DIRTY_PAGES : 0,
        .guest_phys_addr = 0,
        .memory_size = mem_bytes,
        .userspace_addr = (uintptr_t)v->mem,
    };
    if (ioctl(v->fd, KVM_SET_USER_MEMORY_REGION, &slot) < 0) {
        fail(v, "KVM_SET_USER_MEMORY_REGION: %s", strerror(errno));
        goto out;
    }
    if ((v->vcpu = ioctl(v->fd, KVM_CREATE_VCPU, 0)) < 0) {
        fail(v, "KVM_CREATE_VCPU: %s", strerror(errno));
        goto out;
    }
    int sz = ioctl(v->kvm, KVM_GET_VCPU_MMAP_SIZE, 0);
    if (sz <= 0) {
        fail(v, "KVM_GET_VCPU_MMAP_SIZE: %s", strerror(errno));
        goto out;
    }
    v->run_size = (size_t)sz;
    v->run = mmap(NULL, v->run_size, PROT_READ | PROT_WRITE, MAP_SHARED, v->vcpu, 0);
    if (v->run == MAP_FAILED) {
        fail(v, "cannot map the vCPU's kvm_run: %s", strerror(errno));
        goto out;
    }
    return v;
out:
    snprintf(err, err_len, "%s", v->err);
    vm_free(v);
    return NULL;
}

void vm_free(vm *v)
{
    if (!v)
        return;
    if (v->running)
        vm_pause(v);
    if (v->run != MAP_FAILED)
        munmap(v->run, v->run_size);
    if (v->vcpu >= 0)
        close(v->vcpu);
    if (v->fd >= 0)
        close(v->fd);
    if (v->mem != MAP_FAILED)
        munmap(v->mem, v->mem_size);
    if (v->kvm >= 0)
        close(v->kvm);
    free(v);
}

uint8_t *vm_mem(vm *v)
{
    return v->mem;
}

uint64_t vm_mem_size(const vm *v)
{
    return v->mem_size;
}

int vm_reset_vcpu(vm *v, uint32_t entry)
{
    struct kvm_sregs sregs;
    if (ioctl(v->vcpu, KVM_GET_SREGS, &sregs) < 0)
        return fail(v, "KVM_GET_SREGS: %s", strerror(errno));
    /* Flat 4 GiB segments loaded straight into the hidden parts of the
     * segment registers, so the guest needs no GDT in memory as long as it
     * never reloads a segment. */
    struct kvm_segment code = {.base = 0, .limit = 0xffffffff, .selector = 0x08,
                               .type = 0xb, /* execute/read, accessed */
                               .present = 1, .dpl = 0, .db = 1, .s = 1, .l = 0, .g = 1};
    struct kvm_segment data = code;
    data.selector = 0x10;
    data.type = 0x3; /* read/write, accessed */
    sregs.cs = code;
    sregs.ds = sregs.es = sregs.fs = sregs.gs = sregs.ss = data;
    sregs.cr0 = 0x11; /* PE (protected mode) and ET; no paging */
    sregs.cr4 = 0;
    sregs.efer = 0;
    if (ioctl(v->vcpu, KVM_SET_SREGS, &sregs) < 0)
        return fail(v, "KVM_SET_SREGS: %s", strerror(errno));
    struct kvm_regs regs = {.rip = entry, .rflags = 0x2 /* reserved bit 1; IF and DF clear */};
    if (ioctl(v->vcpu, KVM_SET_REGS, &regs) < 0)
        return fail(v, "KVM_SET_REGS: %s", strerror(errno));
    return 0;
}

static void *vcpu_thread(void *arg)
{
    vm *v = arg;
    sigset_t kick;
    sigemptyset(&kick);
    sigaddset(&kick, SIGUSR1);
    pthread_sigmask(SIG_UNBLOCK, &kick, NULL);
    while (!atomic_load(&v->stop)) {
        if (ioctl(v->vcpu, KVM_RUN, 0) < 0) {
            if (errno == EINTR || errno == EAGAIN)
                continue;
            snprintf(v->fault_msg, sizeof v->fault_msg, "KVM_RUN: %s", strerror(errno));
            v->fault = 1;
            break;
        }
        switch (v->run->exit_reason) {
        case KVM_EXIT_INTR:
            continue;
        case KVM_EXIT_HLT:
            snprintf(v->fault_msg, sizeof v->fault_msg, "the guest halted");
            break;
        case KVM_EXIT_SHUTDOWN:
            snprintf(v->fault_msg, sizeof v->fault_msg,
                     "the guest shut down (triple fault)");
            break;
        case KVM_EXIT_FAIL_ENTRY:
            snprintf(v->fault_msg, sizeof v->fault_msg,
                     "the vCPU failed to enter the guest (hardware reason 0x%llx)",
                     (unsigned long long)v->run->fail_entry.hardware_entry_failure_reason);
            break;
        case KVM_EXIT_INTERNAL_ERROR:
            snprintf(v->fault_msg, sizeof v->fault_msg, "KVM internal error, suberror %u",
                     v->run->internal.suberror);
            break;
        default:
            snprintf(v->fault_msg, sizeof v->fault_msg, "unexpected KVM exit reason %u",
                     v->run->exit_reason);
            break;
        }
        v->fault = 1;
        break;
    }
    return NULL;
}

int vm_run(vm *v)
{
    if (v->running)
        return 0;
    if (v->fault)
        return fail(v, "vCPU: %s", v->fault_msg);
    atomic_store(&v->stop, false);
    v->run->immediate_exit = 0;
    /* The kick signal stays blocked everywhere but in the vCPU thread, which
     * unblocks it: only KVM_RUN is interrupted, never a write to the stream. */
    sigset_t kick;
    sigemptyset(&kick);
    sigaddset(&kick, SIGUSR1);
    pthread_sigmask(SIG_BLOCK, &kick, NULL);
    int rc = pthread_create(&v->thread, NULL, vcpu_thread, v);
    if (rc)
        return fail(v, "cannot start the vCPU thread: %s", strerror(rc));
    v->running = true;
    return 0;
}

int vm_pause(vm *v)
{
    if (!v->running)
        return 0;
    atomic_store(&v->stop, true);
    /* immediate_exit covers the window before the thread enters KVM_RUN;
     * the signal takes it out of a KVM_RUN already under way. */
    v->run->immediate_exit = 1;
    pthread_kill(v->thread, SIGUSR1);
    pthread_join(v->thread, NULL);
    v->running = false;
    v->run->immediate_exit = 0;
    if (v->fault)
        return fail(v, "vCPU: %s", v->fault_msg);
    return 0;
}

int vm_dirty_log(vm *v, uint64_t *bitmap)
{
    struct kvm_dirty_log log = {.slot = 0, .dirty_bitmap = bitmap};
    if (ioctl(v->fd, KVM_GET_DIRTY_LOG, &log) < 0)
        return fail(v, "KVM_GET_DIRTY_LOG: %s", strerror(errno));
    return 0;
}

int vm_get_state(vm *v, vcpu_state *s)
{
    memset(s, 0, sizeof *s);
    if (ioctl(v->vcpu, KVM_GET_REGS, &s->regs) < 0)
        return fail(v, "KVM_GET_REGS: %s", strerror(errno));
    if (ioctl(v->vcpu, KVM_GET_SREGS, &s->sregs) < 0)
        return fail(v, "KVM_GET_SREGS: %s", strerror(errno));
    if (ioctl(v->vcpu, KVM_GET_FPU, &s->fpu) < 0)
        return fail(v, "KVM_GET_FPU: %s", strerror(errno));
    return 0;
}

int vm_set_state(vm *v, const vcpu_state *s)
{
    /* Special registers first: they set the mode the others are read in. */
    if (ioctl(v->vcpu, KVM_SET_SREGS, &s->sregs) < 0)
        return fail(v, "KVM_SET_SREGS: %s", strerror(errno));
    if (ioctl(v->vcpu, KVM_SET_REGS, &s->regs) < 0)
        return fail(v, "KVM_SET_REGS: %s", strerror(errno));
    if (ioctl(v->vcpu, KVM_SET_FPU, &s->fpu) < 0)
        return fail(v, "KVM_SET_FPU: %s", strerror(errno));
    return 0;
}
