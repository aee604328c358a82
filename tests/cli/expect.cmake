# Runs COMMAND (a ;-list) and checks its exit code is EXIT and, if given, that its output (stdout
# and stderr together) contains OUTPUT. Usage:
#   cmake -DCOMMAND="cxr;demo;--bogus" -DEXIT=2 -DOUTPUT="text" -P expect.cmake
execute_process(COMMAND ${COMMAND} RESULT_VARIABLE code OUTPUT_VARIABLE out ERROR_VARIABLE err)
if(NOT code STREQUAL "${EXIT}")
  message(FATAL_ERROR "expected exit ${EXIT}, got ${code}\nstdout:\n${out}\nstderr:\n${err}")
endif()
if(DEFINED OUTPUT AND NOT "${out}${err}" MATCHES "${OUTPUT}")
  message(FATAL_ERROR "output does not contain '${OUTPUT}'\nstdout:\n${out}\nstderr:\n${err}")
endif()
