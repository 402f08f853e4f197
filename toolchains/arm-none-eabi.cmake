# Shared part of the firmware toolchains (arm-none-eabi gcc + newlib, semihosting). The
# including file sets MIPR_FW_CPU_FLAGS, MIPR_FW_BOARD (a linker script in toolchains/firmware),
# MIPR_FW_QEMU_MACHINE and MIPR_FW_CPU_HZ (the SysTick clock qemu gives the board).
# Needs gcc-arm-none-eabi, libnewlib-arm-none-eabi and qemu-system-arm (scripts/setup.sh --cross).
#
# CMAKE_SYSTEM_NAME Generic is what the top-level CMakeLists.txt takes as "bare metal": only
# arch/ and runtime/ are built (no files, threads, cpuinfo, pthreadpool or XNNPACK), plus the
# applications in tests/firmware/, whose tests ctest runs under qemu-system-arm.
set(CMAKE_SYSTEM_NAME Generic)
set(CMAKE_C_COMPILER arm-none-eabi-gcc)
set(CMAKE_ASM_COMPILER arm-none-eabi-gcc)
set(CMAKE_AR arm-none-eabi-ar CACHE FILEPATH "")
set(CMAKE_RANLIB arm-none-eabi-ranlib CACHE FILEPATH "")
set(CMAKE_SIZE arm-none-eabi-size CACHE FILEPATH "")
# configure checks compile without linking: a bare-metal program needs the board's start-up
set(CMAKE_TRY_COMPILE_TARGET_TYPE STATIC_LIBRARY)

# Every object goes to its own section so the link drops what the firmware does not call.
set(CMAKE_C_FLAGS_INIT "${MIPR_FW_CPU_FLAGS} -ffunction-sections -fdata-sections")
set(CMAKE_ASM_FLAGS_INIT "${MIPR_FW_CPU_FLAGS}")
# Semihosting C library (librdimon); our own start-up code instead of newlib's crt0, whose
# stack and heap come from the debugger's description (wrong on mps3-an547).
set(CMAKE_EXE_LINKER_FLAGS_INIT "--specs=rdimon.specs -nostartfiles -Wl,--gc-sections")
# -lm of the compiler's multilib (a find_library result would be one fixed multilib's path)
set(MIPR_LIBM m CACHE STRING "The math library")

# Nothing from the host's library or include directories.
set(CMAKE_FIND_ROOT_PATH /usr/lib/arm-none-eabi)
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_PACKAGE ONLY)

list(APPEND CMAKE_TRY_COMPILE_PLATFORM_VARIABLES MIPR_FW_CPU_FLAGS)
