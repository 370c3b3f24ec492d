#include "asyncstream/stream_writer.hpp"

#include <algorithm>
#include <atomic>
#include <cstring>
#include <limits>
#include <mutex>
#include <new>
#include <optional>

#include "asyncstream/detail/chunk_sizer.hpp"
#include "asyncstream/detail/source_control.hpp"
#include "asyncstream/detail/stream_core.hpp"
#include "asyncstream/detail/transfer_send.hpp"
#include "asyncstream/detail/wake_trace.hpp"
#include "asyncstream/error.hpp"
#include "asyncstream/file_store.hpp"

namespace asyncstream {

namespace {

caf::error moved_from() {
  return make_error(errc::invalid_argument,
                    "stream_writer: moved-from writer");
}

} // namespace

struct stream_writer::impl {
  std::shared_ptr<detail::stream_core> core;
  /// Chunks grow from a few KiB to `chunk_size` (detail/chunk_sizer.hpp).
  detail::chunk_sizer sizer;
  std::mutex mtx;
  mutable_chunk_ptr current;
  std::size_t filled = 0;
  std::atomic<std::uint64_t> written{0};
  /// The stream takes no byte past this offset: the smaller of the
  /// capacity and the declared length.
  std::uint64_t limit = std::numeric_limits<std::uint64_t>::max();
  /// Whether `limit` is the declared length (a clean end) rather than the
  /// capacity (`buffer_full`).
  bool limit_is_declared = false;
  /// The writer takes no more bytes (all under `mtx`). From then on every
  /// write (and `close_with_error`) returns `refusal`, and `close` returns
  /// `outcome`: none when the stream ended cleanly where the writer left
  /// it, else the error it ended with.
  bool ended = false;
  caf::error refusal;
  caf::error outcome;

  explicit impl(std::shared_ptr<detail::stream_core> c)
    : core(std::move(c)), sizer(core->options) {
    auto& opts = core->options;
    if (opts.capacity)
      limit = *opts.capacity;
    if (opts.declared_length && *opts.declared_length <= limit) {
      limit = *opts.declared_length;
      limit_is_declared = true;
    }
    if (limit_is_declared && limit == 0) // complete from the start
      end(make_error(errc::closed, "declared length 0 reached: write refused"),
          caf::error{});
  }

  /// Sends to the transfer actor unless its actor system is gone.
  template <class T>
  void send(T&& msg) {
    if (!core->control->system_gone())
      detail::send_to_transfer(core->transfer, core->transfer_inbox.get(),
                               core->counters.get(), std::forward<T>(msg));
  }

  /// Stops taking bytes (call with `mtx` held); sends `last` (the end of
  /// the stream) to the transfer actor if given.
  void end(caf::error refusal_err, caf::error outcome_err,
           std::optional<caf::error> last = std::nullopt) {
    if (ended)
      return;
    ended = true;
    refusal = std::move(refusal_err);
    outcome = std::move(outcome_err);
    current.reset();
    if (last)
      send(source_end{std::move(*last)});
  }

  /// Ends the writer if the stream no longer takes bytes: its actor system
  /// went, it was aborted, or its owner closed it (call with `mtx` held).
  /// Returns the refusal once ended.
  caf::error sync() {
    if (!ended) {
      auto& ctl = *core->control;
      if (ctl.system_gone()) {
        auto err = make_error(errc::stream_gone,
                              "the stream's actor system is gone: destroy "
                              "streams and writers before it");
        end(err, err);
      } else if (core->aborted.load()) {
        end(make_error(errc::canceled, "stream aborted: write refused"),
            make_error(errc::canceled, "stream aborted"));
      } else if (ctl.stopped()) {
        end(make_error(errc::closed, "stream closed: write refused"),
            make_error(errc::closed, "stream closed before its end"));
      }
    }
    return ended ? refusal : caf::error{};
  }

  /// Ends the writer at the limit (call with `mtx` held, `written == limit`)
  /// after a write of `n` bytes took only `k`; returns that write's error.
  caf::error cut(std::size_t k, std::size_t n) {
    auto what = std::to_string(k) + " of " + std::to_string(n)
                + " bytes written";
    if (limit_is_declared) {
      // The stream is complete: the transfer actor ends it by itself.
      auto why = "declared length " + std::to_string(limit) + " reached";
      end(make_error(errc::closed, why + ": write refused"), caf::error{});
      return make_error(errc::closed, why + ": " + what);
    }
    auto why = "capacity " + std::to_string(limit) + " bytes";
    end(make_error(errc::closed, why + " reached: write refused"),
        make_error(errc::buffer_full, why),
        make_error(errc::buffer_full, why));
    return make_error(errc::buffer_full, why + ": " + what);
  }

  /// After bytes were accepted: a stream complete at its declared length
  /// takes no more.
  void check_complete() {
    if (limit_is_declared && written.load(std::memory_order_relaxed) == limit)
      end(make_error(errc::closed, "declared length " + std::to_string(limit)
                                     + " reached: write refused"),
          caf::error{});
  }

  /// Bytes the stream still takes.
  std::uint64_t room() const {
    return limit - written.load(std::memory_order_relaxed);
  }

  /// Appends `s` to the stream file (if any), then hands it to the transfer
  /// actor. A failed file write ends the stream with that error, at the
  /// offset of the first byte that did not reach the file.
  caf::error publish(slice s) {
    if (auto& file = core->file) {
      if (auto ec = file->append(s.data(), s.size())) {
        auto at = written.load(std::memory_order_relaxed);
        auto err = make_error(errc::io_error,
                              "writing the stream file at offset "
                                + std::to_string(at) + ": " + ec.message());
        end(err, err, err);
        return err;
      }
    }
    written.fetch_add(s.size(), std::memory_order_relaxed);
    ASYNCSTREAM_WAKE_MARK(produced);
    if (!core->control->system_gone())
      detail::publish_to_transfer(core->transfer, core->transfer_inbox.get(),
                                  core->transfer_entry.get(),
                                  core->counters.get(), std::move(s));
    return {};
  }

  /// Copies `n` bytes (at most `room()`) into pooled chunks and publishes
  /// them (call with `mtx` held).
  caf::error copy_in(const std::byte* bytes, std::size_t n) {
    auto& ctl = *core->control;
    while (n > 0) {
      // A tethered window or a read-ahead limit holds the producer back.
      auto credit = ctl.wait_for_room(written);
      if (credit == 0)
        return sync();
      if (!current || filled == current->capacity()) {
        current.reset();
        try {
          current = sizer.next(written.load(std::memory_order_relaxed), n);
        } catch (const std::bad_alloc&) {
          // The bytes published so far stay; the stream fails after them.
          auto err = make_error(errc::resource_exhausted,
                                "no memory for a chunk at offset "
                                  + std::to_string(written.load()));
          end(err, err, err);
          return err;
        }
        filled = 0;
      }
      auto k = static_cast<std::size_t>(std::min<std::uint64_t>(
        {n, current->capacity() - filled, credit}));
      std::memcpy(current->mutable_data() + filled, bytes, k);
      if (auto err = publish(slice{current, filled, k}))
        return err;
      filled += k;
      bytes += k;
      n -= k;
    }
    return {};
  }

  /// Ends the stream cleanly, or with `err` (`close`, `close_with_error`).
  caf::error finish(caf::error err) {
    std::lock_guard<std::mutex> guard{mtx};
    if (sync())
      return err ? refusal : outcome;
    auto outcome_err = err;
    end(make_error(errc::closed, "write after close"), std::move(outcome_err),
        std::move(err));
    return {};
  }
};

namespace detail {

stream_writer make_writer(std::shared_ptr<stream_core> core) {
  return stream_writer{std::make_unique<stream_writer::impl>(std::move(core))};
}

} // namespace detail

stream_writer::stream_writer(std::unique_ptr<impl> ptr) noexcept
  : impl_(std::move(ptr)) {
  // nop
}

stream_writer::stream_writer(stream_writer&&) noexcept = default;

namespace {

/// What a writer that goes without a close does to its stream.
void drop(stream_writer::impl& st, const char* why) {
  std::lock_guard<std::mutex> guard{st.mtx};
  if (st.sync())
    return;
  auto err = make_error(errc::unexpected_end, why);
  st.end(err, err, err);
}

} // namespace

stream_writer& stream_writer::operator=(stream_writer&& other) noexcept {
  if (this != &other) {
    if (impl_)
      drop(*impl_, "writer replaced without close");
    impl_ = std::move(other.impl_);
  }
  return *this;
}

stream_writer::~stream_writer() {
  if (impl_)
    drop(*impl_, "writer destroyed without close");
}

caf::error stream_writer::write(const void* data, std::size_t n) {
  if (!impl_)
    return moved_from();
  auto& st = *impl_;
  std::lock_guard<std::mutex> guard{st.mtx};
  if (auto err = st.sync())
    return err;
  if (n == 0)
    return {};
  auto k = static_cast<std::size_t>(std::min<std::uint64_t>(n, st.room()));
  if (auto err = st.copy_in(static_cast<const std::byte*>(data), k))
    return err;
  if (k < n)
    return st.cut(k, n);
  st.check_complete();
  return {};
}

caf::error stream_writer::write(std::string_view text) {
  return write(text.data(), text.size());
}

caf::error stream_writer::write(slice s) {
  if (!impl_)
    return moved_from();
  auto& st = *impl_;
  std::lock_guard<std::mutex> guard{st.mtx};
  if (auto err = st.sync())
    return err;
  if (s.empty())
    return {};
  auto n = s.size();
  auto k = static_cast<std::size_t>(std::min<std::uint64_t>(n, st.room()));
  if (k > 0) {
    // Handed-over bytes are published whole once the window has room at
    // all.
    if (st.core->control->wait_for_room(st.written) == 0)
      return st.sync();
    if (auto err = st.publish(s.subslice(0, k)))
      return err;
  }
  if (k < n)
    return st.cut(k, n);
  st.check_complete();
  return {};
}

caf::error stream_writer::write(std::shared_ptr<const std::string> bytes) {
  if (!impl_)
    return moved_from();
  if (!bytes)
    return make_error(errc::invalid_argument, "write: null buffer");
  auto size = bytes->size();
  return write(slice{adopt_buffer(std::move(bytes)), 0, size});
}

caf::error stream_writer::close() {
  if (!impl_)
    return moved_from();
  return impl_->finish(caf::error{});
}

caf::error stream_writer::close_with_error(caf::error err) {
  if (!impl_)
    return moved_from();
  if (!err)
    return make_error(errc::invalid_argument, "close_with_error: no error");
  return impl_->finish(std::move(err));
}

std::uint64_t stream_writer::written() const noexcept {
  // Not under the mutex: a writer held back by a tethered window holds it.
  return impl_ ? impl_->written.load(std::memory_order_relaxed) : 0;
}

} // namespace asyncstream
