# The shared library exports only pps_ symbols; the installed package works
# from CMake and from pkg-config.
# The public header is -pedantic clean for C89, C99 and C11 users.
add_test(NAME header_pedantic COMMAND bash
    ${CMAKE_CURRENT_SOURCE_DIR}/header_pedantic.sh ${PROJECT_SOURCE_DIR}/include
    ${CMAKE_C_COMPILER})
# The files of src/ call each other in one direction only (no cycle).
add_test(NAME layering COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/layering.sh
    $<TARGET_OBJECTS:persipubsub_objects> COMMAND_EXPAND_LISTS)
add_test(NAME exported_symbols
    COMMAND ${CMAKE_CURRENT_SOURCE_DIR}/check_exports.sh
            $<TARGET_FILE:persipubsub>)
if(NOT PPS_SANITIZE)
  # A sanitized build cannot be linked by a plain consumer.
  add_test(NAME install_consumer
      COMMAND ${CMAKE_CURRENT_SOURCE_DIR}/install_consumer.sh ${PROJECT_BINARY_DIR})
  set_tests_properties(install_consumer PROPERTIES TIMEOUT 300)
endif()
