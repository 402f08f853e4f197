/* Board support shared by the firmware applications (toolchains/firmware/board.c): the
 * arena behind malloc, allocation counting and an instruction counter.
 *
 * The board layer is the platform (what libc and an RTOS are elsewhere), so it holds the
 * little mutable state a bare-metal program needs: the arena's break, the allocation
 * counters and the tick counter's wraps. The mipr libraries themselves hold none. */
#ifndef MIPR_BOARD_H
#define MIPR_BOARD_H

#include <stddef.h>
#include <stdint.h>

/* Called by the start-up code before the C library is initialised: semihosting handles and
 * the tick counter. */
void board_start(void);

/* The arena: its size (MIPR_FW_ARENA_KB) and the most of it malloc ever took. */
size_t board_arena_size(void);
size_t board_arena_used(void);

/* Calls of malloc, calloc, realloc and aligned_alloc since start (the link wraps them), and
 * the bytes they asked for. */
unsigned long board_allocations(void);
unsigned long long board_allocated_bytes(void);

/* Instructions executed since start, counted by SysTick. Exact under qemu -icount shift=0
 * (one instruction per virtual nanosecond) up to the tick's granularity (a few dozen
 * instructions); on hardware it counts CPU cycles instead. */
uint64_t board_instructions(void);

/* newlib's hooks, defined here */
void *_sbrk(ptrdiff_t incr);
void initialise_monitor_handles(void);

#endif
