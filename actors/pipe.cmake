# The backed pipe: a reliable byte pipe over connections that break
# (docs/pipe.md). Its sources go into the asyncstream library.
target_sources(asyncstream PRIVATE
  ${CMAKE_CURRENT_LIST_DIR}/src/pipe_handshake.cpp
  ${CMAKE_CURRENT_LIST_DIR}/src/pipe_transport.cpp)
target_sources(asyncstream PRIVATE
  ${CMAKE_CURRENT_LIST_DIR}/src/backed_pipe.cpp
  ${CMAKE_CURRENT_LIST_DIR}/src/pipe_frames.cpp)
target_sources(asyncstream PRIVATE
  ${CMAKE_CURRENT_LIST_DIR}/src/pipe_faults.cpp)
