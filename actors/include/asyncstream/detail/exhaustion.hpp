// exhaustion: mapping a failed system call or allocation to the kernel's
// errors, so that running out of descriptors, memory or threads is reported
// as `errc::resource_exhausted` and never thrown at a caller.
//
// Contract: plain functions, thread-safe, no ownership.
#pragma once

#include <exception>
#include <string>

#include <caf/error.hpp>

#include "asyncstream/errc.hpp"

namespace asyncstream::detail {

/// Returns whether the errno value `err` says that the process (or the
/// system) ran out of descriptors, memory or threads.
bool is_exhaustion(int err) noexcept;

/// Returns the error for a system call `what` that failed with errno `err`:
/// `resource_exhausted` when `err` says so (`is_exhaustion`), `fallback`
/// otherwise; the context is "what: <strerror>".
caf::error system_failure(errc fallback, const std::string& what, int err);

/// Returns the error for the exception `ex` thrown while `what` was taking
/// resources: `std::bad_alloc` and `std::system_error` become
/// `resource_exhausted` naming the resource; anything else is rethrown.
caf::error exhaustion_from(const std::string& what, std::exception_ptr ex);

} // namespace asyncstream::detail
