# Firmware for a Cortex-M55 with Helium (MVE, integer and float) and FPU, tested on qemu's
# Arm MPS3 AN547 board:
#   cmake --preset firmware-m55 && cmake --build --preset firmware-m55 && ctest --preset firmware-m55
set(CMAKE_SYSTEM_PROCESSOR cortex-m55)
set(MIPR_FW_CPU_FLAGS "-mcpu=cortex-m55 -mthumb -mfloat-abi=hard")
set(MIPR_FW_BOARD mps3-an547)
set(MIPR_FW_QEMU_MACHINE mps3-an547)
set(MIPR_FW_CPU_HZ 32000000)
include(${CMAKE_CURRENT_LIST_DIR}/arm-none-eabi.cmake)
