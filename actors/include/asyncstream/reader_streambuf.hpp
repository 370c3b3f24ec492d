// reader_streambuf: a `std::streambuf` over a `blocking_reader`, so that
// `std::istream` code (`std::getline`, `operator>>`, `read`) can read a
// stream.
//
// Contract:
// - Owns the reader (moved in); destroying the buffer closes it. Blocking,
//   like the reader: use it from plain threads, one at a time.
// - Zero-copy: the get area is the slice the reader holds (up to `chunk`
//   bytes of it); nothing is copied until the `istream` copies out.
// - End of stream is the buffer's EOF. An error is EOF too: `error()` then
//   tells it apart (empty at a clean end). The bytes before an error are
//   read first, as with the reader.
// - Seeking (`seekg`, `tellg`): `pubseekoff`/`pubseekpos` go through
//   `blocking_reader::seek` (an end-relative seek waits for the end unless
//   a length was declared); a failed seek returns -1 and sets `error()`.
//   Only the input side: `out` positions and writes are refused.
#pragma once

#include <cstddef>
#include <istream>
#include <streambuf>
#include <vector>

#include <caf/error.hpp>

#include "asyncstream/blocking_reader.hpp"
#include "asyncstream/slice.hpp"

namespace asyncstream {

class reader_streambuf : public std::streambuf {
public:
  /// Reads through `reader`, up to `chunk` bytes per refill (0: whatever
  /// the reader holds).
  explicit reader_streambuf(blocking_reader reader, std::size_t chunk = 0);

  ~reader_streambuf() override;

  reader_streambuf(const reader_streambuf&) = delete;
  reader_streambuf& operator=(const reader_streambuf&) = delete;

  /// Returns the error that ended the input, if any (empty at a clean end).
  const caf::error& error() const noexcept {
    return error_;
  }

  /// Returns the reader (its position is past the bytes in the get area).
  blocking_reader& reader() noexcept {
    return reader_;
  }

protected:
  int_type underflow() override;
  std::streamsize xsgetn(char_type* s, std::streamsize n) override;
  std::streamsize showmanyc() override;
  pos_type seekoff(off_type off, std::ios_base::seekdir dir,
                   std::ios_base::openmode which) override;
  pos_type seekpos(pos_type pos, std::ios_base::openmode which) override;

private:
  /// Drops the get area and the slices taken but not shown yet.
  void drop_buffer() noexcept;

  /// Returns the bytes taken from the reader and not read yet.
  std::uint64_t unread() const noexcept;

  blocking_reader reader_;
  std::size_t chunk_;
  /// Slices taken from the reader; `pending_[next_ - 1]` is the get area.
  std::vector<slice> pending_;
  std::size_t next_ = 0;
  caf::error error_;
};

/// An `std::istream` that owns its `reader_streambuf`.
class reader_istream : public std::istream {
public:
  explicit reader_istream(blocking_reader reader, std::size_t chunk = 0)
    : std::istream(nullptr), buf_(std::move(reader), chunk) {
    rdbuf(&buf_);
  }

  /// Returns the error that ended the input, if any (empty at a clean end).
  const caf::error& error() const noexcept {
    return buf_.error();
  }

  /// Returns the buffer.
  reader_streambuf& buffer() noexcept {
    return buf_;
  }

private:
  reader_streambuf buf_;
};

} // namespace asyncstream
