# CLI tests: golden-file cases (tests/cli/cases/NAME.sh with the expected
# exit status, stdout and stderr beside it) run against the built
# persipubsub-ctl by tests/cli/run.sh, one ctest test "cli.NAME" per case;
# a case whose precondition is missing exits 77: ctest reports a skip.
if(NOT TARGET persipubsub-ctl)
  return()
endif()
find_program(PPS_BASH bash REQUIRED)

# Helpers of the cases: damage a queue through LMDB, check JSON.
add_executable(pps-cli-damage cli/damage.c)
target_link_libraries(pps-cli-damage PRIVATE PkgConfig::LMDB)
add_executable(pps-cli-json cli/jsonflat.c)
target_link_libraries(pps-cli-json PRIVATE PkgConfig::JANSSON)
foreach(helper pps-cli-damage pps-cli-json)
  target_compile_options(${helper} PRIVATE ${PPS_WARNINGS})
  target_compile_definitions(${helper} PRIVATE _DEFAULT_SOURCE)
endforeach()

file(GLOB _pps_cli_cases CONFIGURE_DEPENDS
    ${CMAKE_CURRENT_SOURCE_DIR}/cli/cases/*.sh)
foreach(_case ${_pps_cli_cases})
  get_filename_component(_name ${_case} NAME_WE)
  add_test(NAME cli.${_name}
      COMMAND ${PPS_BASH} ${CMAKE_CURRENT_SOURCE_DIR}/cli/run.sh ${_name})
  set_tests_properties(cli.${_name} PROPERTIES TIMEOUT 120 SKIP_RETURN_CODE 77
      ENVIRONMENT "PPS_CTL=$<TARGET_FILE:persipubsub-ctl>;PPS_CLI_DAMAGE=$<TARGET_FILE:pps-cli-damage>;PPS_CLI_JSON=$<TARGET_FILE:pps-cli-json>;PPS_MAN_PAGE=${PPS_CTL_MAN_PAGE};ASAN_OPTIONS=detect_leaks=1:abort_on_error=0;UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1")
endforeach()
