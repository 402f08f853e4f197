# ctest fw.story: runs the story firmware under qemu and compares its text with the host's
# (mipr-run on the same .mpk, written by pack.cmake):
#   cmake -DRUN="timeout;...;-kernel" -DELF=fw_story.elf -DTEXT=story.host.txt -P run_story.cmake
cmake_minimum_required(VERSION 3.25)
execute_process(COMMAND ${RUN} ${ELF} OUTPUT_VARIABLE out ERROR_VARIABLE out RESULT_VARIABLE rc)
message("${out}")
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "the firmware exited with ${rc}")
endif()
# mipr-run prints the text and one newline; the firmware frames it with marker lines
if(NOT out MATCHES "--- text ---\n(.*)\n--- end ---\n")
  message(FATAL_ERROR "no text between '--- text ---' and '--- end ---' in the output")
endif()
set(fw_text "${CMAKE_MATCH_1}\n")
file(READ "${TEXT}" host_text)
if(NOT fw_text STREQUAL host_text)
  file(WRITE "${ELF}.text" "${fw_text}")
  message(FATAL_ERROR "the firmware's text (${ELF}.text) differs from the host's (${TEXT})")
endif()
string(LENGTH "${host_text}" n)
message(STATUS "the firmware's greedy text equals the host's (${n} bytes)")
