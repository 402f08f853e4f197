# A stand-in for the Android NDK that runs on CI, where no NDK can be installed: clang 14 and
# lld compile arch/ and the runtime for aarch64-linux-android24, freestanding, and link
# libmipr.so with -nostdlib. Its C library symbols stay undefined, as they would be before a
# device's dynamic linker binds them to libc.so and libm.so; the test android.libmipr checks
# that each is one Android's C library exports at API 24 (tests/android/bionic-api24.syms).
#   cmake --preset android-smoke && cmake --build --preset android-smoke && ctest --preset android-smoke
# Declarations come from Debian's aarch64 C headers (libc6-dev-arm64-cross: the same LP64
# types and the standard C names); the file access of runtime/file.c is left out because its
# errno would bind to glibc's __errno_location. The real NDK build is toolchains/android-arm64.cmake.
set(CMAKE_SYSTEM_NAME Linux)
set(CMAKE_SYSTEM_PROCESSOR aarch64)
set(CMAKE_C_COMPILER clang)
set(CMAKE_C_COMPILER_TARGET aarch64-linux-android24)
set(MIPR_ANDROID_SMOKE ON)
set(CMAKE_TRY_COMPILE_TARGET_TYPE STATIC_LIBRARY)
set(CMAKE_POSITION_INDEPENDENT_CODE ON)
set(CMAKE_C_FLAGS_INIT
    "-ffreestanding -fno-emulated-tls -nostdlibinc -isystem /usr/aarch64-linux-gnu/include")
set(CMAKE_SHARED_LINKER_FLAGS_INIT "-fuse-ld=lld -nostdlib -Wno-unused-command-line-argument")
set(CMAKE_EXE_LINKER_FLAGS_INIT "-fuse-ld=lld -nostdlib -Wno-unused-command-line-argument")
# glibc's headers declare call_once; Android's C library has it only from API 30, so the
# kernel choice is made once with pthread_once, as the NDK's headers at API 24 would decide.
set(MIPR_HAVE_CALL_ONCE OFF CACHE BOOL "call_once in the C library (bionic: API 30)")
# No target libraries at all (libm included: the device provides it): the root searched is a
# folder that does not exist.
set(CMAKE_FIND_ROOT_PATH "${CMAKE_CURRENT_LIST_DIR}/no-android-libraries")
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_PACKAGE ONLY)
set(ENV{PKG_CONFIG_LIBDIR} "${CMAKE_FIND_ROOT_PATH}")
set(ENV{PKG_CONFIG_PATH} "")
