# Cross build for 64-bit Arm Linux (Raspberry Pi 3/4/5 with a 64-bit OS), tested under qemu:
#   cmake --preset aarch64 && cmake --build --preset aarch64 && ctest --preset aarch64
# Needs gcc-aarch64-linux-gnu, libc6-dev-arm64-cross and qemu-user-static
# (scripts/setup.sh --cross).
#
# Target libraries (cpuinfo, zstd, pthreadpool, XNNPACK) come from a sysroot that
# scripts/sysroot.sh fills with Debian's arm64 packages, without changing the system. It lives
# in the build directory (MIPR_SYSROOT, default <build>/sysroot) and is made by the first
# configure; pass -DMIPR_SYSROOT=DIR to share one between build directories.
set(MIPR_CROSS_DEB_ARCH arm64)
set(MIPR_CROSS_TRIPLE aarch64-linux-gnu)
set(CMAKE_SYSTEM_PROCESSOR aarch64)
# gcc 12 for aarch64 has an internal compiler error at -O3 on some float reductions
# (a cache entry: CMake's own default would otherwise append -O3 after it)
set(CMAKE_C_FLAGS_RELEASE "-O2 -DNDEBUG" CACHE STRING "Flags of Release builds")
set(MIPR_QEMU qemu-aarch64-static)
include(${CMAKE_CURRENT_LIST_DIR}/linux-cross.cmake)
