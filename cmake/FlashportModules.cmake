# Shared by the optional GPU modules (src/cuda, src/hip): what to do when a module's toolchain is not usable.
# FLASHPORT_<X>=ON makes that a configure error; AUTO reports the module as skipped and leaves the calling
# CMakeLists.txt (a macro, so return() returns from the caller's scope).
macro(flashport_module_unavailable option name why)
  if(${option} STREQUAL "ON")
    message(FATAL_ERROR "flashport: ${option}=ON but ${why}")
  endif()
  message(STATUS "flashport: ${name} module skipped: ${why}")
  return()
endmacro()
