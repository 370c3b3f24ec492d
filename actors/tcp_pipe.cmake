# The backed pipe's TCP transport on Boost.Asio (docs/aspipe.md). Its
# sources go into the asyncstream library; Asio stays out of the public
# headers (Boost is header-only here: only its include directory, nothing to
# link or export).
find_package(Boost 1.74 REQUIRED)
target_sources(asyncstream PRIVATE
  ${CMAKE_CURRENT_LIST_DIR}/src/tcp_pipe_connector.cpp
  ${CMAKE_CURRENT_LIST_DIR}/src/tcp_pipe_server.cpp
  ${CMAKE_CURRENT_LIST_DIR}/src/tcp_pipe_transport.cpp)
target_include_directories(asyncstream SYSTEM PRIVATE ${Boost_INCLUDE_DIRS})
