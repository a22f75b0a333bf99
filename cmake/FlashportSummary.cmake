# One block at the end of configuration saying what will be built, and for each GPU module that will not, why.
# src/cuda and src/hip print the detailed reason where they decide; this repeats the decision in one place.
function(_flashport_module_line label target option detail)
  if(TARGET ${target})
    set(_state "built (${detail})")
  elseif("${${option}}" STREQUAL "OFF")
    set(_state "skipped: ${option}=OFF")
  else()
    set(_state "skipped: toolchain not found (see the 'flashport: ... skipped' message above)")
  endif()
  message(STATUS "  ${label}${_state}")
endfunction()

message(STATUS "")
message(STATUS "flashport ${PROJECT_VERSION} configuration (${CMAKE_BUILD_TYPE}):")
message(STATUS "  core + CPU backend:  libflashport.so.${FLASHPORT_ABI_VERSION}, -march=${FLASHPORT_CPU_ARCH}")
_flashport_module_line("CUDA module:         " flashport_cuda FLASHPORT_CUDA "archs ${FLASHPORT_CUDA_ARCHS}")
_flashport_module_line("HIP module:          " flashport_hip FLASHPORT_HIP "targets ${FLASHPORT_HIP_ARCHS}")
message(STATUS "  tests:               ${FLASHPORT_BUILD_TESTS}    bench: ${FLASHPORT_BUILD_BENCH}"
               "    sanitizers: ${FLASHPORT_SANITIZE}")
message(STATUS "  install prefix:      ${CMAKE_INSTALL_PREFIX}")
message(STATUS "")
