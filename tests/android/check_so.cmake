# Checks libmipr.so of the Android smoke build (ctest android.libmipr):
#   cmake -DSO=libmipr.so -DREADELF=llvm-readelf -DSYMS=bionic-api24.syms -P check_so.cmake
# - a 64-bit AArch64 shared object without text relocations (Android 6+ refuses them);
# - it exports the runtime's API, and nothing but mipr_* symbols;
# - every symbol it leaves undefined is one Android's libc.so or libm.so exports at API 24
#   (SYMS), so a device's dynamic linker can bind it: a C11 or compiler-runtime function that
#   API 24 lacks (aligned_alloc, call_once, __aarch64_ldadd4_acq_rel, __emutls_*...) fails here.
cmake_minimum_required(VERSION 3.25)
foreach(v SO READELF SYMS)
  if(NOT ${v})
    message(FATAL_ERROR "check_so.cmake: -D${v}= is required")
  endif()
endforeach()

function(readelf out)
  execute_process(COMMAND ${READELF} ${ARGN} ${SO} OUTPUT_VARIABLE text RESULT_VARIABLE rc)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "${READELF} ${ARGN} ${SO} failed (${rc})")
  endif()
  set(${out} "${text}" PARENT_SCOPE)
endfunction()

set(fails 0)
readelf(header -h)
foreach(want "Class:[ \t]+ELF64" "Type:[ \t]+DYN" "Machine:[ \t]+AArch64")
  if(NOT header MATCHES "${want}")
    message(SEND_ERROR "${SO}: ELF header lacks /${want}/")
    math(EXPR fails "${fails} + 1")
  endif()
endforeach()
readelf(dynamic -d)
if(dynamic MATCHES "TEXTREL")
  message(SEND_ERROR "${SO} has text relocations")
  math(EXPR fails "${fails} + 1")
endif()

# --dyn-syms -W lines: Num: Value Size Type Bind Vis Ndx Name
readelf(syms --dyn-syms -W)
string(REPLACE "\n" ";" lines "${syms}")
set(undefined "")
set(defined "")
foreach(line IN LISTS lines)
  if(line MATCHES "^ *[0-9]+: [0-9a-f]+ +[0-9]+ +[A-Z_]+ +(GLOBAL|WEAK) +[A-Z]+ +([A-Z0-9]+) +([^ @]+)")
    if(CMAKE_MATCH_2 STREQUAL "UND")
      list(APPEND undefined ${CMAKE_MATCH_3})
    else()
      list(APPEND defined ${CMAKE_MATCH_3})
    endif()
  endif()
endforeach()

file(STRINGS ${SYMS} allowed REGEX "^[A-Za-z_]")
foreach(s IN LISTS undefined)
  if(NOT s IN_LIST allowed)
    message(SEND_ERROR "${SO} needs ${s}, which Android's C library does not export at API 24")
    math(EXPR fails "${fails} + 1")
  endif()
endforeach()
foreach(s mipr_kernels mipr_model_new mipr_engine_new mipr_engine_forward mipr_generate
          mipr_tokenizer_encode mipr_sampler_sample)
  if(NOT s IN_LIST defined)
    message(SEND_ERROR "${SO} does not export ${s}")
    math(EXPR fails "${fails} + 1")
  endif()
endforeach()

# Only the API leaves the object (the headers' default visibility over -fvisibility=hidden).
foreach(s IN LISTS defined)
  if(NOT s MATCHES "^mipr_")
    message(SEND_ERROR "${SO} exports ${s}: every exported symbol must be mipr_*")
    math(EXPR fails "${fails} + 1")
  endif()
endforeach()

list(LENGTH undefined n_undef)
list(LENGTH defined n_def)
if(fails)
  message(FATAL_ERROR "${SO}: ${fails} problem(s)")
endif()
message(STATUS "${SO}: AArch64 shared object, ${n_def} symbols exported, ${n_undef} bound at "
               "load time, all in Android's libc/libm at API 24: ${undefined}")
