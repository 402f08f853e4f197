/* Start-up code of every Cortex-M board: the vector table, FPU (and Helium) enable, .data
 * copy and .bss clear, C library initialisation, main, exit with main's status.
 * Assembly, so that the C sources need no section or naked-function extensions.
 * A fault prints its name over semihosting and exits with status 1: a crash under qemu
 * ends the test at once instead of hanging until the timeout. */
    .syntax unified
    .thumb

    .section .vectors, "a"
    .align 7
    .global __vectors
__vectors:
    .word __stack_top__
    .word Reset_Handler
    .word NMI_Handler
    .word Fault_Handler         /* HardFault */
    .word Fault_Handler         /* MemManage */
    .word Fault_Handler         /* BusFault */
    .word Fault_Handler         /* UsageFault */
    .word Fault_Handler         /* SecureFault (v8-M) */
    .word 0, 0, 0
    .word Fault_Handler         /* SVCall */
    .word Fault_Handler         /* DebugMon */
    .word 0
    .word Fault_Handler         /* PendSV */
    .word SysTick_Handler

    .text
    .thumb_func
    .global Reset_Handler
Reset_Handler:
    /* CPACR (0xE000ED88): full access to CP10/CP11, the FPU and, on v8.1-M, Helium. It must
     * come first: the C library may use floating-point registers. */
    ldr r0, =0xE000ED88
    ldr r1, [r0]
    orr r1, r1, #(0xF << 20)
    str r1, [r0]
    dsb
    isb
    /* .data from its load address in flash */
    ldr r0, =__data_load__
    ldr r1, =__data_start__
    ldr r2, =__data_end__
1:  cmp r1, r2
    bhs 2f
    ldr r3, [r0], #4
    str r3, [r1], #4
    b 1b
2:  /* .bss cleared */
    ldr r1, =__bss_start__
    ldr r2, =__bss_end__
    movs r3, #0
3:  cmp r1, r2
    bhs 4f
    str r3, [r1], #4
    b 3b
4:  bl board_start
    bl __libc_init_array
    bl main
    bl exit
5:  b 5b

    /* semihosting SYS_WRITE0 (r1: the message), then SYS_EXIT with a run-time error */
    .thumb_func
    .weak NMI_Handler
NMI_Handler:
    ldr r1, =nmi_msg
    b report_and_exit

    .thumb_func
    .weak Fault_Handler
Fault_Handler:
    ldr r1, =fault_msg
report_and_exit:
    movs r0, #0x04
    bkpt 0xAB
    movs r0, #0x18
    ldr r1, =0x20023            /* ADP_Stopped_RunTimeErrorUnknown: qemu exits with 1 */
    bkpt 0xAB
6:  b 6b

    /* -nostartfiles drops crti.o/crtn.o: __libc_init_array still calls these */
    .thumb_func
    .global _init
_init:
    .thumb_func
    .global _fini
_fini:
    bx lr

    .thumb_func
    .weak SysTick_Handler
SysTick_Handler:
    bx lr

    .section .rodata
fault_msg:
    .asciz "firmware: fault exception (bad memory access, undefined instruction or stack overflow)\n"
nmi_msg:
    .asciz "firmware: unexpected NMI\n"
