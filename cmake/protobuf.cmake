# protobuf-c helpers and the documentation built from the sources.
#
# Included by the top-level CMakeLists.txt (same directory scope, so the
# targets below join the export set persipubsubTargets). It builds:
#
# - persipubsub-protobuf: the companion library of include/persipubsub/
#   protobuf.h (shared and static), written on the public API only. A
#   separate library keeps libprotobuf-c out of programs that do not use
#   protobuf. Installed with its own pkg-config file and exported as
#   persipubsub::persipubsub-protobuf.
# - pps-demo-proto: docs/examples/demo.proto compiled by protoc-c at build
#   time, for the example programs and the tests (not installed).
# - the protobuf example programs and the guide's code, compiled so that the
#   documentation cannot rot (tests/protobuf.cmake checks that every C code
#   block of the README and the guide is a verbatim part of them).
# - docs: the API reference from the public headers, if Doxygen is found.

pkg_check_modules(PROTOBUFC REQUIRED IMPORTED_TARGET libprotobuf-c)

# ---- the companion library --------------------------------------------------
add_library(persipubsub-protobuf SHARED src/protobuf.c)
add_library(persipubsub-protobuf_static STATIC src/protobuf.c)
foreach(lib persipubsub-protobuf persipubsub-protobuf_static)
  target_include_directories(${lib} PUBLIC
      $<BUILD_INTERFACE:${PROJECT_SOURCE_DIR}/include>
      $<INSTALL_INTERFACE:${CMAKE_INSTALL_INCLUDEDIR}>)
  # PPS_BUILDING_LIBRARY makes PPS_API export the two functions; everything
  # else stays hidden.
  target_compile_definitions(${lib} PRIVATE PPS_BUILDING_LIBRARY
      _DEFAULT_SOURCE)
  target_compile_options(${lib} PRIVATE ${PPS_WARNINGS})
  set_target_properties(${lib} PROPERTIES C_VISIBILITY_PRESET hidden)
endforeach()
# PUBLIC: protobuf.h includes persipubsub.h and protobuf-c.h, and users call
# both libraries directly.
target_link_libraries(persipubsub-protobuf PUBLIC persipubsub
    PkgConfig::PROTOBUFC)
target_link_libraries(persipubsub-protobuf_static PUBLIC persipubsub_static
    PkgConfig::PROTOBUFC)
set_target_properties(persipubsub-protobuf PROPERTIES
    VERSION ${PROJECT_VERSION} SOVERSION ${PPS_ABI_VERSION})
set_target_properties(persipubsub-protobuf_static PROPERTIES
    OUTPUT_NAME persipubsub-protobuf)
add_library(persipubsub::persipubsub-protobuf ALIAS persipubsub-protobuf)
add_library(persipubsub::persipubsub-protobuf_static ALIAS
    persipubsub-protobuf_static)

install(TARGETS persipubsub-protobuf persipubsub-protobuf_static
    EXPORT persipubsubTargets
    LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR}
    ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR}
    RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR}
    INCLUDES DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
# The exported targets name PkgConfig::PROTOBUFC; persipubsubConfig.cmake
# includes this file to define it (and the component "protobuf").
install(FILES ${PROJECT_SOURCE_DIR}/cmake/persipubsub-protobuf-deps.cmake
    DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/persipubsub)
# PPS_PC_TO_PREFIX comes from the top-level CMakeLists.txt (relocatable .pc).
configure_file(${PROJECT_SOURCE_DIR}/cmake/persipubsub-protobuf.pc.in
    ${PROJECT_BINARY_DIR}/persipubsub-protobuf.pc @ONLY)
install(FILES ${PROJECT_BINARY_DIR}/persipubsub-protobuf.pc
    DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig)

# ---- docs/examples/demo.proto, compiled by protoc-c ---------------------------
if(PPS_BUILD_TESTS OR PPS_BUILD_EXAMPLES)
  find_program(PROTOC_C protoc-c)
  if(NOT PROTOC_C)
    message(FATAL_ERROR "protoc-c not found: install protobuf-c-compiler, or "
            "configure with -DPPS_BUILD_TESTS=OFF -DPPS_BUILD_EXAMPLES=OFF")
  endif()
  set(PPS_DEMO_PROTO ${PROJECT_SOURCE_DIR}/docs/examples/demo.proto)
  set(PPS_DEMO_PB_DIR ${PROJECT_BINARY_DIR}/generated)
  add_custom_command(
      OUTPUT ${PPS_DEMO_PB_DIR}/demo.pb-c.c ${PPS_DEMO_PB_DIR}/demo.pb-c.h
      COMMAND ${CMAKE_COMMAND} -E make_directory ${PPS_DEMO_PB_DIR}
      COMMAND ${PROTOC_C} --c_out=${PPS_DEMO_PB_DIR}
              --proto_path=${PROJECT_SOURCE_DIR}/docs/examples ${PPS_DEMO_PROTO}
      DEPENDS ${PPS_DEMO_PROTO}
      COMMENT "Compiling demo.proto with protoc-c"
      VERBATIM)
  # Generated code: built without the project's warning flags (protoc-c's
  # output is not ours to fix), and its header is a system header so that
  # its macros (DEMO__SENSOR__INIT casts away const) do not trip -Wcast-qual
  # in the code that uses them.
  add_library(pps-demo-proto STATIC ${PPS_DEMO_PB_DIR}/demo.pb-c.c)
  target_include_directories(pps-demo-proto SYSTEM PUBLIC ${PPS_DEMO_PB_DIR})
  target_link_libraries(pps-demo-proto PUBLIC PkgConfig::PROTOBUFC)
endif()

# ---- example programs and the code of the guide -------------------------------
# Every C file whose text the README and the guide show; tests/protobuf.cmake
# checks the code blocks against exactly these (all of them are compiled).
set(PPS_DOC_C_SOURCES)
if(PPS_BUILD_EXAMPLES)
  set(_pps_ex ${PROJECT_SOURCE_DIR}/docs/examples)
  function(pps_pb_example name source)
    add_executable(${name} ${_pps_ex}/${source} ${ARGN})
    target_compile_options(${name} PRIVATE ${PPS_WARNINGS})
    target_compile_definitions(${name} PRIVATE _DEFAULT_SOURCE)
    set_target_properties(${name} PROPERTIES
        RUNTIME_OUTPUT_DIRECTORY ${PROJECT_BINARY_DIR}/docs/examples)
  endfunction()

  pps_pb_example(pps-example-init init.c)
  target_link_libraries(pps-example-init PRIVATE persipubsub::persipubsub)
  foreach(example pb_publisher pb_subscriber dedup)
    string(REPLACE "_" "-" target pps-example-${example})
    pps_pb_example(${target} ${example}.c)
    target_link_libraries(${target} PRIVATE
        persipubsub::persipubsub-protobuf pps-demo-proto)
  endforeach()
  # Excerpts: the README's and the guide's short snippets, completed into
  # programs. Snippets leave parameters unused for brevity.
  foreach(snippets readme_snippets guide_snippets)
    string(REPLACE "_" "-" target pps-doc-${snippets})
    pps_pb_example(${target} ${snippets}.c)
    target_compile_options(${target} PRIVATE -Wno-unused-parameter)
    target_link_libraries(${target} PRIVATE
        persipubsub::persipubsub-protobuf pps-demo-proto)
  endforeach()

  foreach(source publisher subscriber demo init pb_publisher pb_subscriber
                 dedup readme_snippets guide_snippets)
    list(APPEND PPS_DOC_C_SOURCES ${_pps_ex}/${source}.c)
  endforeach()
endif()

# ---- the API reference ----------------------------------------------------------
find_package(Doxygen QUIET)
if(DOXYGEN_FOUND)
  set(PPS_DOXYGEN_OUTPUT ${PROJECT_BINARY_DIR}/docs)
  configure_file(${PROJECT_SOURCE_DIR}/docs/Doxyfile.in
      ${PROJECT_BINARY_DIR}/Doxyfile @ONLY)
  add_custom_target(docs
      COMMAND ${CMAKE_COMMAND} -E make_directory ${PPS_DOXYGEN_OUTPUT}
      COMMAND Doxygen::doxygen ${PROJECT_BINARY_DIR}/Doxyfile
      WORKING_DIRECTORY ${PROJECT_SOURCE_DIR}
      DEPENDS ${PROJECT_SOURCE_DIR}/include/persipubsub/persipubsub.h
              ${PROJECT_SOURCE_DIR}/include/persipubsub/protobuf.h
      COMMENT "API reference: ${PPS_DOXYGEN_OUTPUT}/api/index.html"
      VERBATIM)
endif()
