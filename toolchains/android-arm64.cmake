# Android arm64-v8a, API 24 or later, with the user's NDK (set ANDROID_NDK to its folder):
#   ANDROID_NDK=/path/to/ndk cmake --preset android && cmake --build --preset android
# Builds mipr_arch, mipr_runtime and libmipr.so (tests/android/) with NEON kernels; core, tools and
# tests are host-only. No NDK can be installed on the CI machines: CI builds the freestanding
# stand-in of toolchains/android-smoke.cmake instead (preset android-smoke).
if(NOT ANDROID_NDK AND DEFINED ENV{ANDROID_NDK})
  set(ANDROID_NDK "$ENV{ANDROID_NDK}")
endif()
if(NOT ANDROID_NDK)
  message(FATAL_ERROR "ANDROID_NDK is not set: point it (environment or -DANDROID_NDK=) at an "
                      "Android NDK folder, the one holding build/cmake/android.toolchain.cmake")
endif()
if(NOT EXISTS "${ANDROID_NDK}/build/cmake/android.toolchain.cmake")
  message(FATAL_ERROR "ANDROID_NDK=${ANDROID_NDK} has no build/cmake/android.toolchain.cmake: "
                      "is it an Android NDK (r23 or later)?")
endif()
# every try_compile reads this file again: hand it the NDK's location
list(APPEND CMAKE_TRY_COMPILE_PLATFORM_VARIABLES ANDROID_NDK)
set(ANDROID_ABI arm64-v8a)
if(NOT ANDROID_PLATFORM)
  set(ANDROID_PLATFORM android-24)
endif()
include("${ANDROID_NDK}/build/cmake/android.toolchain.cmake")
