# Reliability (issues 4 and 13; docs/reliability.rst): faults and hostile
# inputs, one file per concern, and the kill-anywhere torture program.
pps_add_test(test_full       # full map, full file system, oversized sends
    ISOLATE full/full_file_system_is_efull_not_a_crash # mounts a tmpfs
            full/full_file_system_every_call_is_efull) # mounts a tmpfs
pps_add_test(test_foreign)    # what is not a queue: foreign, damaged, missing
pps_add_test(test_permissions # file modes, read-only queues
    ISOLATE permissions/read_only_queue_directory_is_a_clear_error) # as nobody
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

# cppcheck and clang-tidy (about 30 s on 2 cores), one ctest entry per
# tool, each skipped (77) where its tool is not installed. Once per suite
# run: in the build without sanitizers.
if(NOT PPS_SANITIZE)
  foreach(tool cppcheck clang-tidy)
    string(REPLACE "-" "_" entry "static_analysis_${tool}")
    add_test(NAME ${entry}
        COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/static_analysis.sh
                --only ${tool} ${CMAKE_CURRENT_BINARY_DIR}/${entry})
    set_tests_properties(${entry} PROPERTIES TIMEOUT 300
        SKIP_RETURN_CODE 77)
  endforeach()
endif()

# A smoke run of the benchmark (tiny sizes, one repetition) keeps it
# working; the figures come from the full run only (docs/performance.rst).
if(TARGET pps-bench)
  add_test(NAME bench_smoke COMMAND pps-bench --quick)
  set_tests_properties(bench_smoke PROPERTIES TIMEOUT 300)
endif()

# Hostile deployments: links planted in and at queue directories, other
# owners, group sharing, interrupted inits, full file systems.
pps_add_test(test_deploy)
