#include "asyncstream/stream_writer.hpp"

#include <algorithm>
#include <atomic>
#include <cstring>
#include <mutex>
#include <new>

#include <caf/send.hpp>

#include "asyncstream/detail/chunk_sizer.hpp"
#include "asyncstream/detail/source_control.hpp"
#include "asyncstream/detail/stream_core.hpp"
#include "asyncstream/error.hpp"
#include "asyncstream/file_store.hpp"

namespace asyncstream {

struct stream_writer::impl {
  std::shared_ptr<detail::stream_core> core;
  /// Chunks grow from a few KiB to `chunk_size` (detail/chunk_sizer.hpp).
  detail::chunk_sizer sizer;
  std::mutex mtx;
  mutable_chunk_ptr current;
  std::size_t filled = 0;
  std::atomic<std::uint64_t> written{0};
  bool closed = false;
  /// Why the stream refused bytes for good (the stream file failed, no
  /// memory for a chunk); every later write fails with it.
  caf::error file_failure;

  explicit impl(std::shared_ptr<detail::stream_core> c)
    : core(std::move(c)), sizer(core->options) {
    // nop
  }

  /// Returns why no more bytes are accepted, if so (call with `mtx` held).
  caf::error refusal() const {
    if (file_failure)
      return file_failure;
    if (closed)
      return make_error(errc::closed, "write after close");
    if (core->aborted.load())
      return make_error(errc::canceled);
    if (core->control->stopped())
      return make_error(errc::closed, "the stream accepts no more bytes");
    return {};
  }

  /// Appends `s` to the stream file (if any), then hands it to the transfer
  /// actor. A failed file write ends the stream with that error, at the
  /// offset of the first byte that did not reach the file.
  caf::error publish(slice s) {
    if (auto& file = core->file) {
      if (auto ec = file->append(s.data(), s.size())) {
        file_failure = make_error(errc::io_error,
                                  "writing the stream file: " + ec.message());
        end_stream(file_failure);
        return file_failure;
      }
    }
    written.fetch_add(s.size(), std::memory_order_relaxed);
    caf::anon_send(core->transfer, next_slice{std::move(s)});
    return {};
  }

  /// Sends the end of the stream once (call with `mtx` held).
  void end_stream(caf::error err) {
    if (closed)
      return;
    closed = true;
    current.reset();
    caf::anon_send(core->transfer, source_end{std::move(err)});
  }

  caf::error finish(caf::error err) {
    std::lock_guard<std::mutex> guard{mtx};
    if (closed)
      return file_failure;
    end_stream(std::move(err));
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

stream_writer& stream_writer::operator=(stream_writer&& other) noexcept {
  if (this != &other) {
    if (impl_)
      impl_->finish(make_error(errc::unexpected_end,
                               "writer replaced without close"));
    impl_ = std::move(other.impl_);
  }
  return *this;
}

stream_writer::~stream_writer() {
  if (impl_)
    impl_->finish(make_error(errc::unexpected_end,
                             "writer destroyed without close"));
}

caf::error stream_writer::write(const void* data, std::size_t n) {
  auto& st = *impl_;
  std::lock_guard<std::mutex> guard{st.mtx};
  if (auto err = st.refusal())
    return err;
  auto* bytes = static_cast<const std::byte*>(data);
  auto& ctl = *st.core->control;
  while (n > 0) {
    // A tethered window or a read-ahead limit holds the producer back.
    auto room = ctl.wait_for_room(st.written);
    if (room == 0)
      return st.refusal();
    if (!st.current || st.filled == st.current->capacity()) {
      st.current.reset();
      try {
        st.current = st.sizer.next(st.written.load(std::memory_order_relaxed),
                                   n);
      } catch (const std::bad_alloc&) {
        // The bytes published so far stay; the stream fails after them.
        st.file_failure = make_error(errc::resource_exhausted,
                                     "no memory for a chunk");
        st.end_stream(st.file_failure);
        return st.file_failure;
      }
      st.filled = 0;
    }
    auto k = static_cast<std::size_t>(std::min<std::uint64_t>(
      {n, st.current->capacity() - st.filled, room}));
    std::memcpy(st.current->mutable_data() + st.filled, bytes, k);
    if (auto err = st.publish(slice{st.current, st.filled, k}))
      return err;
    st.filled += k;
    bytes += k;
    n -= k;
  }
  return {};
}

caf::error stream_writer::write(slice s) {
  auto& st = *impl_;
  std::lock_guard<std::mutex> guard{st.mtx};
  if (auto err = st.refusal())
    return err;
  if (s.empty())
    return {};
  // Handed-over bytes are published whole once the window has room at all.
  if (st.core->control->wait_for_room(st.written) == 0)
    return st.refusal();
  return st.publish(std::move(s));
}

caf::error stream_writer::write(std::shared_ptr<const std::string> bytes) {
  auto size = bytes->size();
  return write(slice{adopt_buffer(std::move(bytes)), 0, size});
}

caf::error stream_writer::close() {
  return impl_->finish(caf::error{});
}

caf::error stream_writer::close_with_error(caf::error err) {
  if (!err)
    return make_error(errc::invalid_argument, "close_with_error: no error");
  return impl_->finish(std::move(err));
}

std::uint64_t stream_writer::written() const noexcept {
  // Not under the mutex: a writer held back by a tethered window holds it.
  return impl_->written.load(std::memory_order_relaxed);
}

} // namespace asyncstream
