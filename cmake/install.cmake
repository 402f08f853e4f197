# cmake --install: the libraries, their public headers, the tools, a CMake package
# (find_package(mipr) with imported targets mipr::arch, mipr::runtime, mipr::core) and a
# pkg-config file. tests/consumer builds against the installed package in CI.
include(GNUInstallDirs)
include(CMakePackageConfigHelpers)

set(_mipr_libs mipr_arch mipr_runtime)
if(TARGET mipr_core)
  list(APPEND _mipr_libs mipr_core)
endif()
foreach(_lib IN LISTS _mipr_libs)
  string(REGEX REPLACE "^mipr_" "" _short ${_lib})
  set_target_properties(${_lib} PROPERTIES EXPORT_NAME ${_short})
  target_include_directories(${_lib} INTERFACE
    $<INSTALL_INTERFACE:${CMAKE_INSTALL_INCLUDEDIR}/mipr>)
endforeach()

# mipr_warnings only carries our compile flags; static libraries name it as a link-only
# dependency, so it travels in the export set (it adds nothing to a consumer's build).
install(TARGETS ${_mipr_libs} mipr_warnings EXPORT miprTargets
        ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR}
        LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR})
install(FILES arch/mipr_arch.h runtime/mipr_runtime.h DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}/mipr)
if(TARGET mipr_core)
  install(FILES core/mipr.h DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}/mipr)
endif()
foreach(_tool mipr mipr-run)
  if(TARGET ${_tool})
    install(TARGETS ${_tool} RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
  endif()
endforeach()
install(FILES docs/FORMAT.md docs/ARCHITECTURE.md DESTINATION ${CMAKE_INSTALL_DOCDIR})

set(_mipr_cmakedir ${CMAKE_INSTALL_LIBDIR}/cmake/mipr)
install(EXPORT miprTargets NAMESPACE mipr:: DESTINATION ${_mipr_cmakedir})
set(MIPR_CONFIG_CPUINFO ${MIPR_WITH_CPUINFO})
set(MIPR_CONFIG_ZSTD ${MIPR_WITH_ZSTD})
if(TARGET mipr_core)
  set(MIPR_CONFIG_CORE ON)
else()
  set(MIPR_CONFIG_CORE OFF)
endif()
set(MIPR_CONFIG_ZSTD_TARGET "${MIPR_ZSTD_TARGET}")
configure_package_config_file(cmake/miprConfig.cmake.in
  ${CMAKE_CURRENT_BINARY_DIR}/miprConfig.cmake INSTALL_DESTINATION ${_mipr_cmakedir})
write_basic_package_version_file(${CMAKE_CURRENT_BINARY_DIR}/miprConfigVersion.cmake
  COMPATIBILITY SameMinorVersion)
install(FILES ${CMAKE_CURRENT_BINARY_DIR}/miprConfig.cmake
              ${CMAKE_CURRENT_BINARY_DIR}/miprConfigVersion.cmake DESTINATION ${_mipr_cmakedir})

# pkg-config: static libraries, so every dependency is listed in Libs.
set(_pc_libs "-lmipr_runtime -lmipr_arch")
if(TARGET mipr_core)
  set(_pc_libs "-lmipr_core ${_pc_libs}")
endif()
set(_pc_requires "")
if(MIPR_WITH_ZSTD)
  string(APPEND _pc_requires " libzstd")
endif()
if(MIPR_WITH_CPUINFO)
  string(APPEND _pc_requires " libcpuinfo")
endif()
if(TARGET mipr_core)
  string(APPEND _pc_requires " libcjson")
endif()
if(MIPR_WITH_XNNPACK)
  string(APPEND _pc_libs " -lXNNPACK")
endif()
if(MIPR_WITH_PTHREADPOOL)
  string(APPEND _pc_libs " -lpthreadpool -lpthread")
endif()
string(APPEND _pc_libs " -lm")
# the .pc file finds its prefix relative to itself, so the package can be moved
file(RELATIVE_PATH _pc_up "/p/${CMAKE_INSTALL_LIBDIR}/pkgconfig" "/p")
configure_file(cmake/mipr.pc.in ${CMAKE_CURRENT_BINARY_DIR}/mipr.pc @ONLY)
install(FILES ${CMAKE_CURRENT_BINARY_DIR}/mipr.pc DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig)
