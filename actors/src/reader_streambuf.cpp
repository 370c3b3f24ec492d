#include "asyncstream/reader_streambuf.hpp"

#include <algorithm>
#include <climits>
#include <cstring>
#include <limits>

#include "asyncstream/error.hpp"

namespace asyncstream {

namespace {

/// The largest get area (`gbump` takes an int).
constexpr std::size_t max_area = std::size_t{1} << 30;

} // namespace

reader_streambuf::reader_streambuf(blocking_reader reader, std::size_t chunk)
  : reader_(std::move(reader)), chunk_(chunk) {
  // nop
}

reader_streambuf::~reader_streambuf() {
  reader_.close();
}

void reader_streambuf::drop_buffer() noexcept {
  setg(nullptr, nullptr, nullptr);
  pending_.clear();
  next_ = 0;
}

std::uint64_t reader_streambuf::unread() const noexcept {
  std::uint64_t n = static_cast<std::uint64_t>(egptr() - gptr());
  for (auto i = next_; i < pending_.size(); ++i)
    n += pending_[i].size();
  return n;
}

reader_streambuf::int_type reader_streambuf::underflow() {
  if (gptr() < egptr())
    return traits_type::to_int_type(*gptr());
  while (next_ == pending_.size()) {
    pending_.clear();
    next_ = 0;
    setg(nullptr, nullptr, nullptr);
    auto xs = reader_.read_slices(chunk_ > 0 ? chunk_ : max_area);
    if (!xs) {
      error_ = std::move(xs.error());
      return traits_type::eof();
    }
    if (xs->empty())
      return traits_type::eof(); // the end of the stream
    error_ = caf::error{};
    pending_ = std::move(*xs);
  }
  auto& s = pending_[next_];
  if (s.size() > max_area) {
    // Show it in parts: split off the rest as the next slice.
    pending_.insert(pending_.begin() + static_cast<std::ptrdiff_t>(next_) + 1,
                    s.subslice(max_area, s.size() - max_area));
    pending_[next_] = pending_[next_].subslice(0, max_area);
  }
  ++next_;
  auto& shown = pending_[next_ - 1];
  // The get area is only read: nothing writes through these pointers
  // (pbackfail is not overridden, so a putback never stores a byte).
  auto* first = const_cast<char*>(reinterpret_cast<const char*>(shown.data()));
  setg(first, first, first + shown.size());
  return traits_type::to_int_type(*gptr());
}

std::streamsize reader_streambuf::xsgetn(char_type* s, std::streamsize n) {
  std::streamsize done = 0;
  while (done < n) {
    auto avail = egptr() - gptr();
    if (avail == 0) {
      if (traits_type::eq_int_type(underflow(), traits_type::eof()))
        break;
      continue;
    }
    auto k = std::min<std::streamsize>(avail, n - done);
    std::memcpy(s + done, gptr(), static_cast<std::size_t>(k));
    gbump(static_cast<int>(k));
    done += k;
  }
  return done;
}

std::streamsize reader_streambuf::showmanyc() {
  auto n = unread();
  if (n > 0)
    return static_cast<std::streamsize>(
      std::min<std::uint64_t>(n, std::numeric_limits<std::streamsize>::max()));
  return reader_.at_end() ? -1 : 0;
}

reader_streambuf::pos_type
reader_streambuf::seekoff(off_type off, std::ios_base::seekdir dir,
                          std::ios_base::openmode which) {
  if ((which & std::ios_base::in) == 0)
    return pos_type(off_type(-1));
  auto here = reader_.position() - unread();
  if (dir == std::ios_base::cur && off == 0)
    return pos_type(static_cast<off_type>(here)); // tellg: no seek
  // The reader moves to the byte the stream shows next, so that a failed
  // seek (which keeps the reader's position) keeps the stream's too.
  drop_buffer();
  auto pos = reader_.seek(static_cast<std::int64_t>(here), whence::start);
  if (pos) {
    switch (dir) {
      case std::ios_base::beg:
        pos = reader_.seek(static_cast<std::int64_t>(off), whence::start);
        break;
      case std::ios_base::cur:
        pos = reader_.seek(static_cast<std::int64_t>(off), whence::current);
        break;
      case std::ios_base::end:
        pos = reader_.seek(static_cast<std::int64_t>(off), whence::end);
        break;
      default:
        return pos_type(off_type(-1));
    }
  }
  if (!pos) {
    error_ = std::move(pos.error());
    return pos_type(off_type(-1));
  }
  error_ = caf::error{};
  return pos_type(static_cast<off_type>(*pos));
}

reader_streambuf::pos_type
reader_streambuf::seekpos(pos_type pos, std::ios_base::openmode which) {
  return seekoff(off_type(pos), std::ios_base::beg, which);
}

} // namespace asyncstream
