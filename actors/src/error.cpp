#include "asyncstream/error.hpp"

#include <caf/actor_system_config.hpp>
#include <caf/make_message.hpp>
#include <caf/message.hpp>

namespace asyncstream {

namespace {

std::string render_code(std::uint8_t code, const caf::message& ctx) {
  std::string result = "asyncstream: ";
  result += describe(static_cast<errc>(code));
  if (ctx.size() == 1 && ctx.match_element<std::string>(0)) {
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
