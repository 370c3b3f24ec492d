# Remote streams over CAF's middleman (caf::io): a library of its own, so
# that programs without remote use do not link libcaf_io.
find_package(CAF 0.17 REQUIRED COMPONENTS core io)
add_library(asyncstream_remote STATIC
  actors/src/remote_client.cpp
  actors/src/remote_server.cpp
  actors/src/remote_wire.cpp)
target_link_libraries(asyncstream_remote PUBLIC asyncstream CAF::io)
set_target_properties(asyncstream_remote PROPERTIES
  POSITION_INDEPENDENT_CODE ON EXPORT_NAME remote)
add_library(asyncstream::remote ALIAS asyncstream_remote)
