# Packs the story model for the firmware with the host's mipr, and writes the host's greedy
# text for the same .mpk (mipr-run) as the reference the firmware test compares with:
#   cmake -DMIPR=.../mipr -DMIPR_RUN=.../mipr-run -DDATA=<test data> -DQUANT=f32 \
#         -DPROMPT=... -DSTEPS=200 -DMPK=story.mpk -DTEXT=story.host.txt -P pack.cmake
cmake_minimum_required(VERSION 3.25)
foreach(tool MIPR MIPR_RUN)
  if(NOT EXISTS "${${tool}}")
    message(FATAL_ERROR "the host's ${tool} is missing (${${tool}}): the firmware packs its model "
      "with the host build. Build it first (cmake --preset host && cmake --build --preset host) "
      "or configure this build with -DMIPR_HOST_MIPR=/path/to/mipr")
  endif()
endforeach()
set(model "${DATA}/stories260K/stories260K.bin")
set(tok "${DATA}/stories260K/tok512.bin")
foreach(f "${model}" "${tok}")
  if(NOT EXISTS "${f}")
    message(FATAL_ERROR "test data missing: ${f}. Set MIPR_TEST_DATA to the folder with the "
      "mipr test assets (README.md, section 'Test data', lists their public sources)")
  endif()
endforeach()
execute_process(COMMAND "${MIPR}" pack "${model}" -z "${tok}" -o "${MPK}" --quant ${QUANT}
                        --codec raw
                OUTPUT_QUIET ERROR_VARIABLE log RESULT_VARIABLE rc)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "mipr pack failed (${rc}): ${log}")
endif()
execute_process(COMMAND "${MIPR_RUN}" "${MPK}" -p "${PROMPT}" -n ${STEPS} -t 0 --threads 1
                OUTPUT_FILE "${TEXT}" ERROR_VARIABLE log RESULT_VARIABLE rc)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "mipr-run on ${MPK} failed (${rc}): ${log}")
endif()
