// The remote tests across a network namespace (netns_suite.cpp).
#pragma once

namespace asyncstream::test {

/// Runs the suite; returns 0 (passed), 1 (failed) or 77 (skipped).
int run_netns_suite();

} // namespace asyncstream::test
