// CAF binding of the asyncstream error codes.
//
// Contract: `caf::error{errc::x}` works through ADL (`make_error` below).
// Call `asyncstream::configure(cfg)` on the `actor_system_config` of any
// system that runs asyncstream actors, so that `to_string(err)` prints the
// messages of errc.hpp instead of a bare number.
#pragma once

#include <string>

#include <caf/atom.hpp>
#include <caf/error.hpp>
#include <caf/fwd.hpp>

#include "asyncstream/errc.hpp"

namespace asyncstream {

/// The CAF error category of asyncstream errors (at most 10 characters).
constexpr caf::atom_value error_category = caf::atom("asyncstrm");

/// Converts `code` to a `caf::error` of the asyncstream category.
caf::error make_error(errc code);

/// Converts `code` to a `caf::error` that carries a context string.
caf::error make_error(errc code, std::string context);

/// Returns whether `err` is the asyncstream error `code`.
bool is(const caf::error& err, errc code) noexcept;

/// Renders any CAF error (asyncstream's with its message and context).
std::string render(const caf::error& err);

/// Registers the error renderer (and nothing else) with `cfg`.
void configure(caf::actor_system_config& cfg);

} // namespace asyncstream
