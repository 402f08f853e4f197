# Shared part of the Linux cross toolchains; the including file sets MIPR_CROSS_TRIPLE (gcc
# prefix), MIPR_CROSS_DEB_ARCH (Debian architecture), CMAKE_SYSTEM_PROCESSOR and MIPR_QEMU.
set(CMAKE_SYSTEM_NAME Linux)
set(CMAKE_C_COMPILER ${MIPR_CROSS_TRIPLE}-gcc)
set(CMAKE_AR ${MIPR_CROSS_TRIPLE}-ar CACHE FILEPATH "")
set(CMAKE_RANLIB ${MIPR_CROSS_TRIPLE}-ranlib CACHE FILEPATH "")

# The sysroot of target libraries. This file is read again by every try_compile, from a
# scratch build directory: MIPR_SYSROOT is handed to those runs so they use the same one.
list(APPEND CMAKE_TRY_COMPILE_PLATFORM_VARIABLES MIPR_SYSROOT)
if(NOT MIPR_SYSROOT)
  set(MIPR_SYSROOT "${CMAKE_BINARY_DIR}/sysroot" CACHE PATH "Sysroot of target libraries")
endif()
if(NOT EXISTS "${MIPR_SYSROOT}/.complete")
  message(STATUS "Fetching ${MIPR_CROSS_DEB_ARCH} libraries into ${MIPR_SYSROOT}")
  execute_process(
    COMMAND bash "${CMAKE_CURRENT_LIST_DIR}/../scripts/sysroot.sh" ${MIPR_CROSS_DEB_ARCH} "${MIPR_SYSROOT}"
    RESULT_VARIABLE _mipr_sysroot_rc)
  if(NOT _mipr_sysroot_rc EQUAL 0)
    message(FATAL_ERROR "scripts/sysroot.sh ${MIPR_CROSS_DEB_ARCH} ${MIPR_SYSROOT} failed")
  endif()
endif()
set(_mipr_libdir "${MIPR_SYSROOT}/usr/lib/${MIPR_CROSS_TRIPLE}")

# Libraries and headers from the sysroot (and the cross libc), programs from the host.
set(CMAKE_FIND_ROOT_PATH "${MIPR_SYSROOT}" /usr/${MIPR_CROSS_TRIPLE})
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_PACKAGE ONLY)
set(CMAKE_LIBRARY_ARCHITECTURE ${MIPR_CROSS_TRIPLE})
set(ENV{PKG_CONFIG_LIBDIR} "${_mipr_libdir}/pkgconfig:${MIPR_SYSROOT}/usr/share/pkgconfig")
set(ENV{PKG_CONFIG_SYSROOT_DIR} "${MIPR_SYSROOT}")
set(ENV{PKG_CONFIG_PATH} "")
# The sysroot's headers after the compiler's own; its shared libraries' own dependencies
# (XNNPACK -> pthreadpool, cpuinfo) resolve at link time through -rpath-link.
set(CMAKE_C_STANDARD_INCLUDE_DIRECTORIES "${MIPR_SYSROOT}/usr/include")
set(CMAKE_EXE_LINKER_FLAGS_INIT "-Wl,-rpath-link,${_mipr_libdir}")
set(CMAKE_SHARED_LINKER_FLAGS_INIT "-Wl,-rpath-link,${_mipr_libdir}")

# ctest runs target programs under qemu, with the cross libc (-L) and the sysroot's
# libraries on the guest's library path (-E).
set(CMAKE_CROSSCOMPILING_EMULATOR ${MIPR_QEMU} -L /usr/${MIPR_CROSS_TRIPLE}
    -E LD_LIBRARY_PATH=${_mipr_libdir})
