// actor_request: `self->request(dest, timeout, msg).then(f, g)` for any
// scheduled actor, typed or not.
//
// Contract: call it inside `self` only. `f` (the answer) or `g` (an error;
// `caf::sec::request_timeout` after `timeout`) runs exactly once, inside
// `self`, unless `self` terminates first (then neither runs and both are
// destroyed with its pending response handlers). An invalid `dest` is
// answered with `caf::sec::invalid_argument`, as CAF's `request` does.
//
// Why: CAF 0.17 puts `request` into a mixin of each concrete actor class
// (`event_based_actor`, `typed_event_based_actor<...>`), not into
// `scheduled_actor`. The pieces it uses are public members of
// `scheduled_actor` and `local_actor`, so one non-template pointer type serves
// every kind of event-based actor.
#pragma once

#include <utility>

#include <caf/actor_cast.hpp>
#include <caf/actor_control_block.hpp>
#include <caf/behavior.hpp>
#include <caf/duration.hpp>
#include <caf/mailbox_element.hpp>
#include <caf/message.hpp>
#include <caf/message_id.hpp>
#include <caf/scheduled_actor.hpp>
#include <caf/sec.hpp>

namespace asyncstream::detail {

template <class Handle, class F, class G>
void actor_request(caf::scheduled_actor* self, const Handle& dest,
                   const caf::duration& timeout, caf::message msg, F f, G g) {
  auto req_id = self->new_request_id(caf::message_priority::normal);
  auto to = caf::actor_cast<caf::strong_actor_ptr>(dest);
  if (to) {
    to->enqueue(caf::make_mailbox_element(caf::strong_actor_ptr{self->ctrl()},
                                          req_id, {}, std::move(msg)),
                self->context());
    self->request_response_timeout(timeout, req_id);
  } else {
    self->eq_impl(req_id.response_id(), self->ctrl(), self->context(),
                  caf::make_error(caf::sec::invalid_argument));
  }
  self->add_multiplexed_response_handler(
    req_id.response_id(), caf::behavior{std::move(f), std::move(g)});
}

} // namespace asyncstream::detail
