# Cross build for 32-bit Arm Linux with hardware float (Raspberry Pi 2/3/4 with a 32-bit OS),
# tested under qemu:
#   cmake --preset armhf && cmake --build --preset armhf && ctest --preset armhf
# Needs gcc-arm-linux-gnueabihf, libc6-dev-armhf-cross and qemu-user-static
# (scripts/setup.sh --cross). NEON with FMA (VFPv4) is the baseline of the whole build, as on
# every Raspberry Pi from the 2 on.
#
# Target libraries come from a sysroot that scripts/sysroot.sh fills with Debian's armhf
# packages, without changing the system; see aarch64-linux-gnu.cmake.
set(MIPR_CROSS_DEB_ARCH armhf)
set(MIPR_CROSS_TRIPLE arm-linux-gnueabihf)
set(CMAKE_SYSTEM_PROCESSOR armv7l)
set(CMAKE_C_FLAGS_INIT "-mfpu=neon-vfpv4 -mfloat-abi=hard")
set(MIPR_QEMU qemu-arm-static)
include(${CMAKE_CURRENT_LIST_DIR}/linux-cross.cmake)
