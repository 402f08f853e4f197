# cmake --install: the libraries, their public headers, the tools, a CMake package
# (find_package(mipr) with imported targets mipr::arch, mipr::runtime, mipr::core) and a
# pkg-config file. tests/consumer builds against the installed package in CI.
include(GNUInstallDirs)
include(CMakePackageConfigHelpers)

set(_mipr_libs mipr_arch mipr_runtime)
foreach(_lib mipr_xnnpack mipr_core)
  if(TARGET ${_lib})
    list(APPEND _mipr_libs ${_lib})
  endif()
endforeach()
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
if(TARGET mipr_xnnpack)
  install(FILES runtime/xnnpack/mipr_xnnpack.h DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}/mipr)
endif()
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

# pkg-config: one file per library (mipr-arch, mipr-runtime, mipr-core) and mipr.pc for all
# of them. A static install lists every dependency in Libs/Requires, so a plain
# `pkg-config --libs` links; a shared one moves them to the .private fields, where they
# belong (the SONAMEs carry them).
# the .pc files find their prefix relative to themselves, so the package can be moved
file(RELATIVE_PATH _pc_up "/p/${CMAKE_INSTALL_LIBDIR}/pkgconfig" "/p")
function(mipr_pc_file name desc requires requires_private libs libs_private)
  if(NOT BUILD_SHARED_LIBS)
    string(APPEND requires " ${requires_private}")
    string(APPEND libs " ${libs_private}")
    set(requires_private "")
    set(libs_private "")
  endif()
  set(_pc_name ${name})
  set(_pc_desc "${desc}")
  set(_pc_requires "${requires}")
  set(_pc_requires_private "${requires_private}")
  set(_pc_libs "${libs}")
  set(_pc_libs_private "${libs_private}")
  configure_file(${PROJECT_SOURCE_DIR}/cmake/mipr.pc.in ${CMAKE_CURRENT_BINARY_DIR}/${name}.pc @ONLY)
  install(FILES ${CMAKE_CURRENT_BINARY_DIR}/${name}.pc DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig)
endfunction()

set(_req "")
if(MIPR_WITH_CPUINFO)
  set(_req "libcpuinfo")
endif()
mipr_pc_file(mipr-arch "mipr's kernels and dtypes" "" "${_req}" "-lmipr_arch" "-lm")

set(_req "")
set(_libs "")
if(MIPR_WITH_ZSTD)
  string(APPEND _req " libzstd")
endif()
if(MIPR_WITH_PTHREADPOOL)
  string(APPEND _libs " -lpthreadpool -lpthread")
endif()
mipr_pc_file(mipr-runtime "mipr's runtime: .mpk models, engine, tokenizer, sampler" "mipr-arch"
             "${_req}" "-lmipr_runtime" "${_libs} -lm")
if(TARGET mipr_xnnpack)
  set(_libs "")
  if(MIPR_WITH_XNNPACK)
    set(_libs "-lXNNPACK -lpthreadpool")
  endif()
  mipr_pc_file(mipr-xnnpack "XNNPACK as mipr's prefill provider" "mipr-runtime" ""
               "-lmipr_xnnpack" "${_libs}")
endif()
set(_all mipr-runtime)
if(TARGET mipr_core)
  mipr_pc_file(mipr-core "mipr's host library: formats, calibration, MI, pruning"
               "mipr-xnnpack" "libcjson" "-lmipr_core" "")
  set(_all mipr-core)
endif()
mipr_pc_file(mipr "Pruned LLaMA-family models on small devices: every mipr library" "${_all}"
             "" "" "")
