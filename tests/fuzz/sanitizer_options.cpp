// Default sanitizer options of every fuzzer (asyncstream_add_fuzzer links
// this file in), so that replaying an input by hand behaves like the run in
// tools/fuzz.sh: the first UBSan report is fatal (a crash libFuzzer keeps),
// with a stack trace, and CAF's one known report is suppressed
// (tests/ubsan.supp). ASAN_OPTIONS / UBSAN_OPTIONS in the environment are
// applied after these and win.
#ifndef ASYNCSTREAM_UBSAN_SUPP
#  error "define ASYNCSTREAM_UBSAN_SUPP (the path of tests/ubsan.supp)"
#endif

extern "C" const char* __ubsan_default_options() {
  return "halt_on_error=1:print_stacktrace=1"
         ":suppressions=" ASYNCSTREAM_UBSAN_SUPP;
}

extern "C" const char* __asan_default_options() {
  return "detect_leaks=1";
}
