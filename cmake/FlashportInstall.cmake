# Install rules: headers, libflashport.so (SONAME libflashport.so.<ABI>), the CMake package (find_package(flashport)
# -> flashport::flashport), flashport.pc, the GPU modules next to the library (where the registry looks for them)
# and the command-line tools. Included from the root CMakeLists.txt after every target is defined.
include(CMakePackageConfigHelpers)

set(FLASHPORT_INSTALL_CMAKEDIR ${CMAKE_INSTALL_LIBDIR}/cmake/flashport CACHE STRING
    "Where flashportConfig.cmake is installed, relative to the prefix")

install(TARGETS flashport EXPORT flashportTargets
  LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR} COMPONENT runtime NAMELINK_COMPONENT development
  RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR} COMPONENT runtime
  INCLUDES DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
install(DIRECTORY ${PROJECT_SOURCE_DIR}/include/flashport DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}
        COMPONENT development)

install(EXPORT flashportTargets NAMESPACE flashport:: DESTINATION ${FLASHPORT_INSTALL_CMAKEDIR}
        COMPONENT development)
configure_package_config_file(${CMAKE_CURRENT_LIST_DIR}/flashportConfig.cmake.in
  ${PROJECT_BINARY_DIR}/flashportConfig.cmake INSTALL_DESTINATION ${FLASHPORT_INSTALL_CMAKEDIR})
# 0.x: minor versions may break the API, so only the same minor version is compatible (the ABI has its SONAME).
write_basic_package_version_file(${PROJECT_BINARY_DIR}/flashportConfigVersion.cmake
  VERSION ${PROJECT_VERSION} COMPATIBILITY SameMinorVersion)
install(FILES ${PROJECT_BINARY_DIR}/flashportConfig.cmake ${PROJECT_BINARY_DIR}/flashportConfigVersion.cmake
        DESTINATION ${FLASHPORT_INSTALL_CMAKEDIR} COMPONENT development)

# pkg-config: the prefix is derived from the .pc file's own location (${pcfiledir}, known to pkg-config and pkgconf),
# so `cmake --install --prefix X` and moved prefixes give correct paths; absolute install dirs are kept as given.
if(IS_ABSOLUTE "${CMAKE_INSTALL_LIBDIR}")
  set(FLASHPORT_PC_PREFIX "${CMAKE_INSTALL_PREFIX}")
else()
  file(RELATIVE_PATH _pc_up "/p/${CMAKE_INSTALL_LIBDIR}/pkgconfig" "/p")
  string(REGEX REPLACE "/$" "" _pc_up "${_pc_up}")
  set(FLASHPORT_PC_PREFIX "\${pcfiledir}/${_pc_up}")
endif()
foreach(_dir LIBDIR INCLUDEDIR)
  if(IS_ABSOLUTE "${CMAKE_INSTALL_${_dir}}")
    set(FLASHPORT_PC_${_dir} "${CMAKE_INSTALL_${_dir}}")
  else()
    set(FLASHPORT_PC_${_dir} "\${prefix}/${CMAKE_INSTALL_${_dir}}")
  endif()
endforeach()
configure_file(${CMAKE_CURRENT_LIST_DIR}/flashport.pc.in ${PROJECT_BINARY_DIR}/flashport.pc @ONLY)
install(FILES ${PROJECT_BINARY_DIR}/flashport.pc DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig
        COMPONENT development)

# GPU modules go next to libflashport.so, the first place the registry searches. src/hip installs its own module.
if(TARGET flashport_cuda)
  install(TARGETS flashport_cuda LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR} COMPONENT runtime)
endif()

# flashport-check installs itself (tools/check/CMakeLists.txt).
if(TARGET flashport-bench)
  install(TARGETS flashport-bench RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR} COMPONENT tools)
endif()
