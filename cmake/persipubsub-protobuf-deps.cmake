# Installed beside persipubsubConfig.cmake, which includes it before the
# exported targets: persipubsub::persipubsub-protobuf links
# PkgConfig::PROTOBUFC, defined here. Without libprotobuf-c the rest of the
# package still works, and find_package(persipubsub COMPONENTS protobuf)
# fails with the reason.
if(NOT TARGET PkgConfig::PROTOBUFC)
  pkg_check_modules(PROTOBUFC QUIET IMPORTED_TARGET libprotobuf-c)
endif()
if(TARGET PkgConfig::PROTOBUFC)
  set(persipubsub_protobuf_FOUND TRUE)
else()
  set(persipubsub_protobuf_FOUND FALSE)
  if("protobuf" IN_LIST persipubsub_FIND_COMPONENTS)
    set(persipubsub_NOT_FOUND_MESSAGE "persipubsub::persipubsub-protobuf needs libprotobuf-c (Debian: libprotobuf-c-dev)")
  endif()
endif()
