# Tests of the protobuf-c helpers and of the documentation (cmake/
# protobuf.cmake builds what they use). Included by tests/CMakeLists.txt.

pps_add_test(test_protobuf pps_alloc.c) # failing allocations: PPS_ENOMEM
target_link_libraries(test_protobuf PRIVATE persipubsub-protobuf_static
    pps-demo-proto)
target_link_options(test_protobuf PRIVATE ${PPS_ALLOC_WRAP})

# The companion shared library exports its two functions and nothing else.
add_test(NAME exported_symbols_protobuf
    COMMAND ${CMAKE_CURRENT_SOURCE_DIR}/check_exports.sh
            $<TARGET_FILE:persipubsub-protobuf>)

if(PPS_BUILD_EXAMPLES)
  # Every C code block of the README and the guide is a verbatim part of a
  # compiled example (see docs_snippets.sh for what "part" means).
  add_test(NAME docs_snippets
      COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/docs_snippets.sh
              --rst ${PROJECT_SOURCE_DIR}/README.rst
                    ${PROJECT_SOURCE_DIR}/docs/guide.rst
              --c ${PPS_DOC_C_SOURCES}
              --proto ${PROJECT_SOURCE_DIR}/docs/examples/demo.proto
              --cmake ${PROJECT_SOURCE_DIR}/docs/examples/project/CMakeLists.txt)
  # The protobuf example programs work together: init, publish, subscribe,
  # a payload that is not a Reading, deduplication after a "crash".
  add_test(NAME pb_examples
      COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/pb_examples.sh
              ${PROJECT_BINARY_DIR}/docs/examples)
  set_tests_properties(pb_examples PROPERTIES TIMEOUT 120
      ENVIRONMENT "ASAN_OPTIONS=detect_leaks=1;UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1")
endif()

if(NOT PPS_SANITIZE AND PPS_BUILD_EXAMPLES)
  # The installed package: a CMake consumer of
  # persipubsub::persipubsub-protobuf, and the guide's tutorial run verbatim
  # against pkg-config (with pps-example-init standing in for
  # persipubsub-ctl init if the build has no CLI). A sanitized build cannot
  # be linked by a plain consumer.
  add_test(NAME pb_install
      COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/pb_install.sh
              ${PROJECT_BINARY_DIR} ${PROJECT_SOURCE_DIR})
  set_tests_properties(pb_install PROPERTIES TIMEOUT 300)
endif()

if(TARGET docs)
  # The API reference documents every public declaration: Doxygen reports
  # none undocumented (its log is in BUILD/docs/doxygen-warnings.txt).
  add_test(NAME docs_reference
      COMMAND bash -c [["$1" "$2" && if [ -s "$3" ]; then cat "$3"; exit 1; fi]]
              docs_reference $<TARGET_FILE:Doxygen::doxygen>
              ${PROJECT_BINARY_DIR}/Doxyfile
              ${PPS_DOXYGEN_OUTPUT}/doxygen-warnings.txt
      WORKING_DIRECTORY ${PROJECT_SOURCE_DIR})
endif()
