// CAF binding of the asyncstream error codes.
//
// Contract: `caf::error{errc::x}` works through ADL (`make_error` below).
// Call `asyncstream::configure(cfg)` on the `actor_system_config` of any
// system that runs asyncstream actors, so that `to_string(err)` prints the
// messages of errc.hpp instead of a bare number.
//
// A `data_loss` error carries its range as numbers in its context (a
// message of (text, offset, oldest kept)): `data_loss_range(err)` returns
// them, so a reader can seek to `oldest` without asking the stream.
#pragma once

#include <cstdint>
#include <optional>
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

/// The bytes a `data_loss` error says are gone: `[offset, oldest)`.
struct lost_range {
  /// The offset that was asked for.
  std::uint64_t offset;
  /// The oldest byte still kept; reading on from here works.
  std::uint64_t oldest;
};

/// Returns the lost range of a `data_loss` error; none for any other error
/// (and for a `data_loss` made without one).
std::optional<lost_range> data_loss_range(const caf::error& err);

/// Makes the `data_loss` error for a read at `offset` when the oldest kept
/// byte is `oldest` (its text says how many bytes were lost, its context
/// carries both numbers for `data_loss_range`).
caf::error make_data_loss(std::uint64_t offset, std::uint64_t oldest);

/// Returns whether `err` is the asyncstream error `code`.
bool is(const caf::error& err, errc code) noexcept;

/// Renders any CAF error (asyncstream's with its message and context).
std::string render(const caf::error& err);

/// Registers the error renderer (and nothing else) with `cfg`.
void configure(caf::actor_system_config& cfg);

} // namespace asyncstream
