# The power-cut test (issue 11; docs/reliability.rst "Power cuts"): rounds of
# processes on a queue in a crashfs mount, a simulated power cut at a random
# moment, then a check of what the queue promised. Included by
# tests/crashfs/CMakeLists.txt (it needs crashfs). Each ctest run below makes
# 30 cuts, 10 per durability, half of them on fresh queues; the long run is
# in docs/reliability.rst. Skipped (77) without FUSE or mount privilege.
add_executable(powercut ${CMAKE_CURRENT_LIST_DIR}/powercut.c
    ${CMAKE_CURRENT_LIST_DIR}/powercut_verify.c)
target_include_directories(powercut PRIVATE ${PROJECT_SOURCE_DIR}/include)
target_compile_definitions(powercut PRIVATE _DEFAULT_SOURCE
    CRASHFS_EXE="$<TARGET_FILE:crashfs>")
target_compile_options(powercut PRIVATE ${PPS_WARNINGS})
target_link_libraries(powercut PRIVATE persipubsub_static crashfs_mount
    PkgConfig::LMDB PkgConfig::JANSSON Threads::Threads)
add_dependencies(powercut crashfs)

foreach(model lose-all torn)
  string(REPLACE "-" "_" name "powercut_${model}")
  add_test(NAME ${name} COMMAND powercut --rounds 30 --durability cycle
      --both --model ${model} --p 0.5)
  set_tests_properties(${name} PROPERTIES TIMEOUT 300 SKIP_RETURN_CODE 77
      RESOURCE_LOCK fuse
      ENVIRONMENT "ASAN_OPTIONS=detect_leaks=1:abort_on_error=0;LSAN_OPTIONS=suppressions=${CMAKE_CURRENT_LIST_DIR}/lsan.supp;UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1")
endforeach()
