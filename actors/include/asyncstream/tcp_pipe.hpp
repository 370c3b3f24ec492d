// tcp_pipe: the backed pipe over TCP (docs/aspipe.md): one include for the
// transport over a socket (tcp_pipe_transport.hpp), the active side's
// connector (tcp_pipe_connector.hpp) and the passive side's server
// (tcp_pipe_server.hpp).
//
// Contract: see each header. Boost.Asio stays inside the library (no Asio
// type in any of them); none of them needs an actor system.
#pragma once

#include "asyncstream/tcp_pipe_connector.hpp"
#include "asyncstream/tcp_pipe_server.hpp"
#include "asyncstream/tcp_pipe_transport.hpp"
