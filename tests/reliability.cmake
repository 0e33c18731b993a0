# Reliability (issues 4 and 13; docs/reliability.rst): faults and hostile
# inputs, one file per concern, and the kill-anywhere torture program.
pps_add_test(test_full)       # full map, full file system, oversized sends
pps_add_test(test_foreign)    # what is not a queue: foreign, damaged, missing
pps_add_test(test_permissions) # file modes, read-only queues
pps_add_test(test_ids)        # ids that look like paths or format strings
pps_add_test(test_fullmap)    # draining a full map, large after large, batches
pps_add_test(test_remove)     # removing a subscriber under running processes

# pps-torture is a controller program, not a Criterion test. CI runs a
# modest count (36 kills, well under a minute also under ASan on 2 cores),
# one round in each durability mode (process crashes must lose nothing in
# any of them); docs/reliability.rst gives the long run.
add_executable(pps-torture torture.c)
target_include_directories(pps-torture PRIVATE ${PROJECT_SOURCE_DIR}/include)
target_compile_definitions(pps-torture PRIVATE _DEFAULT_SOURCE)
target_compile_options(pps-torture PRIVATE ${PPS_WARNINGS})
target_link_libraries(pps-torture PRIVATE persipubsub_static PkgConfig::LMDB
    PkgConfig::JANSSON Threads::Threads)
add_test(NAME torture COMMAND pps-torture --rounds 3 --kills 36
    --round-ms 2000 --durability cycle)
set_tests_properties(torture PROPERTIES TIMEOUT 300
    ENVIRONMENT "ASAN_OPTIONS=detect_leaks=1:abort_on_error=0;LSAN_OPTIONS=suppressions=${CMAKE_CURRENT_SOURCE_DIR}/lsan.supp;UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1")

# The multi-threaded scenario as a plain program: the ThreadSanitizer check
# (Criterion cannot run under TSan, Criterion issue #274). In a
# -DPPS_SANITIZE=thread build run it with: ctest -R tsan_threads
add_executable(pps-tsan-threads tsan_threads.c)
target_include_directories(pps-tsan-threads PRIVATE
    ${PROJECT_SOURCE_DIR}/include)
target_compile_definitions(pps-tsan-threads PRIVATE _DEFAULT_SOURCE)
target_compile_options(pps-tsan-threads PRIVATE ${PPS_WARNINGS})
target_link_libraries(pps-tsan-threads PRIVATE persipubsub_static
    PkgConfig::LMDB PkgConfig::JANSSON Threads::Threads)
add_test(NAME tsan_threads COMMAND pps-tsan-threads)
set_tests_properties(tsan_threads PROPERTIES TIMEOUT 600
    ENVIRONMENT "TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1:suppressions=${CMAKE_CURRENT_SOURCE_DIR}/tsan.supp;ASAN_OPTIONS=detect_leaks=1")

# cppcheck and clang-tidy (about 30 s on 2 cores); skipped (77) where
# neither is installed. Once per suite run: in the build without sanitizers.
if(NOT PPS_SANITIZE)
  add_test(NAME static_analysis
      COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/static_analysis.sh
              ${CMAKE_CURRENT_BINARY_DIR}/static-analysis)
  set_tests_properties(static_analysis PROPERTIES TIMEOUT 300
      SKIP_RETURN_CODE 77)
endif()

# A smoke run of the benchmark (tiny sizes, one repetition) keeps it
# working; the figures come from the full run only (docs/performance.rst).
if(TARGET pps-bench)
  add_test(NAME bench_smoke COMMAND pps-bench --quick)
  set_tests_properties(bench_smoke PROPERTIES TIMEOUT 300)
endif()
