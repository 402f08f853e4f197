# Firmware for a Cortex-M7 with double-precision FPU, tested on qemu's Arm MPS2 AN500 board:
#   cmake --preset firmware-m7 && cmake --build --preset firmware-m7 && ctest --preset firmware-m7
set(CMAKE_SYSTEM_PROCESSOR cortex-m7)
set(MIPR_FW_CPU_FLAGS "-mcpu=cortex-m7 -mthumb -mfpu=fpv5-d16 -mfloat-abi=hard")
set(MIPR_FW_BOARD mps2-an500)
set(MIPR_FW_QEMU_MACHINE mps2-an500)
set(MIPR_FW_CPU_HZ 25000000)
include(${CMAKE_CURRENT_LIST_DIR}/arm-none-eabi.cmake)
