#include "asyncstream/error.hpp"

#include <cerrno>
#include <cstring>
#include <new>
#include <system_error>

#include <caf/actor_system_config.hpp>
#include <caf/make_message.hpp>
#include <caf/message.hpp>

#include "asyncstream/detail/exhaustion.hpp"

namespace asyncstream {

namespace {

std::string render_code(std::uint8_t code, const caf::message& ctx) {
  std::string result = "asyncstream: ";
  result += describe(static_cast<errc>(code));
  // The text comes first; numbers after it (data_loss) are for programs.
  if (ctx.size() >= 1 && ctx.match_element<std::string>(0)) {
    auto& str = ctx.get_as<std::string>(0);
    if (!str.empty()) {
      result += " (";
      result += str;
      result += ')';
    }
  }
  return result;
}

} // namespace

caf::error make_error(errc code) {
  return caf::error{static_cast<std::uint8_t>(code), error_category};
}

caf::error make_error(errc code, std::string context) {
  return caf::error{static_cast<std::uint8_t>(code), error_category,
                    caf::make_message(std::move(context))};
}

std::optional<lost_range> data_loss_range(const caf::error& err) {
  if (!is(err, errc::data_loss))
    return std::nullopt;
  auto& ctx = err.context();
  if (ctx.size() != 3 || !ctx.match_element<std::string>(0)
      || !ctx.match_element<std::uint64_t>(1)
      || !ctx.match_element<std::uint64_t>(2))
    return std::nullopt;
  return lost_range{ctx.get_as<std::uint64_t>(1),
                    ctx.get_as<std::uint64_t>(2)};
}

caf::error make_data_loss(std::uint64_t offset, std::uint64_t oldest) {
  auto lost = oldest > offset ? oldest - offset : 0;
  auto text = std::to_string(lost) + " byte" + (lost == 1 ? "" : "s")
              + " lost: offset " + std::to_string(offset) + ", oldest kept "
              + std::to_string(oldest);
  return caf::error{static_cast<std::uint8_t>(errc::data_loss),
                    error_category,
                    caf::make_message(std::move(text), offset, oldest)};
}

bool is(const caf::error& err, errc code) noexcept {
  // CAF 0.17's error::category() dereferences the data of an empty error.
  return err && err.category() == error_category
         && err.code() == static_cast<std::uint8_t>(code);
}

std::string render(const caf::error& err) {
  if (!err)
    return "no error";
  if (err.category() == error_category)
    return render_code(err.code(), err.context());
  return caf::to_string(err);
}

void configure(caf::actor_system_config& cfg) {
  cfg.add_error_category(error_category,
                         [](std::uint8_t code, caf::atom_value,
                            const caf::message& ctx) {
                           return render_code(code, ctx);
                         });
}

} // namespace asyncstream

// -- detail/exhaustion.hpp ----------------------------------------------------

namespace asyncstream::detail {

bool is_exhaustion(int err) noexcept {
  switch (err) {
    case EMFILE:  // the process is out of descriptors
    case ENFILE:  // the system is out of descriptors
    case ENOMEM:  // out of memory (mmap, eventfd, threads)
    case EAGAIN:  // out of threads (pthread_create, clone)
    case ENOBUFS: // out of kernel buffers
      return true;
    default:
      return false;
  }
}

caf::error system_failure(errc fallback, const std::string& what, int err) {
  auto code = is_exhaustion(err) ? errc::resource_exhausted : fallback;
  return make_error(code, what + ": " + std::strerror(err));
}

caf::error exhaustion_from(const std::string& what, std::exception_ptr ex) {
  try {
    std::rethrow_exception(ex);
  } catch (const std::bad_alloc&) {
    return make_error(errc::resource_exhausted, what + ": out of memory");
  } catch (const std::system_error& e) {
    // std::thread reports a failed pthread_create this way (EAGAIN).
    return make_error(errc::resource_exhausted,
                      what + ": " + e.code().message());
  }
}

} // namespace asyncstream::detail
