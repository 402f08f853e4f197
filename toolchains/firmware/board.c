/* Board support: the bounded arena behind malloc, allocation counters, the tick counter. */
#include <errno.h>
#include <malloc.h>
#include <stdint.h>
#include <stdlib.h>

#include "board.h"

/* linker-script symbols (sections.ld) */
extern char __arena_start__[], __arena_end__[];

static char *arena_brk;
static size_t arena_peak;
static unsigned long n_allocs;
static unsigned long long alloc_bytes;
static volatile uint32_t tick_wraps;

/* newlib's own _sbrk (weak in librdimon) trusts the debugger's heap description, which on
 * some boards (mps3-an547 under qemu) is unusable: this one stays inside the arena. */
void *_sbrk(ptrdiff_t incr)
{
    if (!arena_brk)
        arena_brk = __arena_start__;
    if (incr > __arena_end__ - arena_brk || incr < __arena_start__ - arena_brk) {
        errno = ENOMEM;
        return (void *)-1;
    }
    char *old = arena_brk;
    arena_brk += incr;
    if ((size_t)(arena_brk - __arena_start__) > arena_peak)
        arena_peak = (size_t)(arena_brk - __arena_start__);
    return old;
}

size_t board_arena_size(void)
{
    return (size_t)(__arena_end__ - __arena_start__);
}

size_t board_arena_used(void)
{
    return arena_peak;
}

/* ---- allocation counting: the link wraps the allocators (-Wl,--wrap=malloc ...) ---- */

void *__real_malloc(size_t n);
void *__real_calloc(size_t n, size_t size);
void *__real_realloc(void *p, size_t n);
void *__wrap_malloc(size_t n);
void *__wrap_calloc(size_t n, size_t size);
void *__wrap_realloc(void *p, size_t n);
void *__wrap_aligned_alloc(size_t align, size_t n);

static void count(unsigned long long bytes)
{
    n_allocs++;
    alloc_bytes += bytes;
}

void *__wrap_malloc(size_t n)
{
    count(n);
    return __real_malloc(n);
}

void *__wrap_calloc(size_t n, size_t size)
{
    count((unsigned long long)n * size);
    return __real_calloc(n, size);
}

void *__wrap_realloc(void *p, size_t n)
{
    count(n);
    return __real_realloc(p, n);
}

/* newlib 3.3's aligned_alloc calls posix_memalign, which arm-none-eabi's newlib lacks */
void *__wrap_aligned_alloc(size_t align, size_t n)
{
    count(n);
    return memalign(align, n);
}

unsigned long board_allocations(void)
{
    return n_allocs;
}

unsigned long long board_allocated_bytes(void)
{
    return alloc_bytes;
}

/* ---- SysTick as a 64-bit counter of CPU clock ticks ---- */

#define SYST_CSR (*(volatile uint32_t *)0xE000E010u)
#define SYST_RVR (*(volatile uint32_t *)0xE000E014u)
#define SYST_CVR (*(volatile uint32_t *)0xE000E018u)
#define SYST_MAX 0xFFFFFFu

/* called by the vector table (startup.S) at every wrap of the 24-bit counter */
void SysTick_Handler(void);
void SysTick_Handler(void)
{
    tick_wraps++;
}

void board_start(void)
{
    initialise_monitor_handles();
    SYST_RVR = SYST_MAX;
    SYST_CVR = 0;
    SYST_CSR = 7; /* processor clock, wrap interrupt, enabled */
    /* the counter reads 0 until its first reload, which would look like a full period */
    while (SYST_CVR == 0)
        ;
}

uint64_t board_instructions(void)
{
    uint32_t w, v;
    do {
        w = tick_wraps;
        v = SYST_CVR;
    } while (w != tick_wraps);
    uint64_t ticks = (uint64_t)w * (SYST_MAX + 1u) + (SYST_MAX - v);
    return ticks * 1000000000u / MIPR_FW_CPU_HZ;
}
