// fuzz_check: the assertion of the libFuzzer targets in tests/fuzz/.
//
// FUZZ_CHECK(cond) prints the failed condition with its file and line to
// stderr and traps, so libFuzzer records the input as a crash (crash-<sha1>)
// whatever the build type (NDEBUG does not turn it off, unlike assert).
#pragma once

#include <cstdio>

#define FUZZ_CHECK(cond)                                                       \
  do {                                                                         \
    if (!(cond)) {                                                             \
      std::fprintf(stderr, "%s:%d: FUZZ_CHECK failed: %s\n", __FILE__,         \
                   __LINE__, #cond);                                           \
      std::fflush(stderr);                                                     \
      __builtin_trap();                                                        \
    }                                                                          \
  } while (false)
