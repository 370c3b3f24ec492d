// The remote tests across a real network boundary on one machine: the
// reader runs in a network namespace of its own, joined to this one by a
// veth pair (as root). Run by CTest as `asyncstream-remote-tests --netns`;
// exits 77 (skipped) where namespaces cannot be made, 0 when every check
// holds, 1 otherwise. Everything it creates it deletes, whatever happens.
#include "netns_suite.hpp"

#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <future>
#include <string>

#include <caf/actor_system.hpp>

#include "asyncstream/error.hpp"
#include "asyncstream/remote.hpp"
#include "asyncstream/stream_writer.hpp"

#include "child_process.hpp"
#include "roles.hpp"

namespace asyncstream::test {

namespace {

using namespace std::chrono_literals;

int sh(const std::string& cmd) {
  return std::system((cmd + " >/dev/null 2>&1").c_str());
}

/// A namespace and a veth pair between it and this namespace.
struct netns {
  std::string name;
  std::string host_if;
  std::string ns_if;
  std::string host_ip;
  std::string ns_ip;
  bool made = false;

  netns() {
    auto id = std::to_string(getpid());
    name = "asr" + id;
    host_if = "asrh" + id;
    ns_if = "asrn" + id;
    auto net = "10.231." + std::to_string(getpid() % 250) + ".";
    host_ip = net + "1";
    ns_ip = net + "2";
  }

  /// Returns an empty string on success, else what failed.
  std::string make() {
    if (geteuid() != 0)
      return "not root";
    if (sh("ip netns add " + name) != 0)
      return "ip netns add failed";
    made = true;
    for (auto& cmd :
         {"ip link add " + host_if + " type veth peer name " + ns_if,
          "ip link set " + ns_if + " netns " + name,
          "ip addr add " + host_ip + "/24 dev " + host_if,
          "ip link set " + host_if + " up",
          "ip -n " + name + " addr add " + ns_ip + "/24 dev " + ns_if,
          "ip -n " + name + " link set " + ns_if + " up",
          "ip -n " + name + " link set lo up"})
      if (sh(cmd) != 0)
        return "failed: " + cmd;
    return {};
  }

  void link(bool up) {
    sh("ip link set " + host_if + (up ? " up" : " down"));
  }

  ~netns() {
    if (!made)
      return;
    sh("ip netns del " + name);
    sh("ip link del " + host_if); // gone with the namespace, normally
  }
};

int failures = 0;

void check(bool ok, const std::string& what) {
  std::printf("%s: %s\n", ok ? "ok" : "FAILED", what.c_str());
  std::fflush(stdout);
  if (!ok)
    ++failures;
}

/// A reader in the namespace holds a tethered stream; `cut` ends it (kills
/// the process, or takes the link down); the slot and the tether must go.
void reader_lost(netns& ns, caf::actor_system& sys, remote::publisher& pub,
                 const std::string& name, bool kill_it) {
  stream_options opts;
  opts.retention = 256u << 10;
  opts.policy = retention_policy::tethered;
  auto s = stream::make(sys, source::push(), opts);
  auto w = s ? s->writer() : caf::expected<stream_writer>{s.error()};
  if (!s || !w || pub.add(name, *s)) {
    check(false, name + ": make and publish the stream");
    return;
  }
  auto first = pattern(0, 1000);
  check(!w->write(first.data(), first.size()), name + ": first write");
  child_process child{{"--hold", ns.host_ip, std::to_string(pub.port()), name},
                      {"ip", "netns", "exec", ns.name}};
  auto ready = child.expect("READY", 60s);
  check(static_cast<bool>(ready), name + ": the reader in the namespace read");
  if (!ready)
    return;
  check(s->stats().readers == 1, name + ": one reader holds a slot");
  auto writing = std::async(std::launch::async, [&] {
    auto more = pattern(1000, 4u << 20);
    return w->write(more.data(), more.size());
  });
  check(writing.wait_for(300ms) == std::future_status::timeout,
        name + ": the reader's tether holds the producer");
  if (kill_it)
    child.kill();
  else
    ns.link(false);
  // Killed: its connection closes at once. Cut: no reset comes; the
  // middleman's connection timeout declares the node dead.
  auto limit = kill_it ? 30s : remote::connection_timeout + 30s;
  auto went_on = writing.wait_for(limit) == std::future_status::ready;
  check(went_on, name + ": the producer goes on once the reader is lost");
  if (!went_on)
    s->abort(); // releases the writer, so this test ends either way
  writing.wait();
  check(s->stats().readers == 0, name + ": the slot is free");
  if (!kill_it)
    ns.link(true);
  child.kill();
  pub.remove(name);
}

} // namespace

int run_netns_suite() {
  netns ns;
  auto why = ns.make();
  if (!why.empty()) {
    std::printf("skipped: cannot make a network namespace (%s)\n", why.c_str());
    return 77;
  }
  {
    remote_config cfg;
    caf::actor_system sys{cfg};
    remote::publish_options popts;
    popts.address = ns.host_ip;
    auto pub = remote::publisher::publish(sys, 0, popts);
    check(static_cast<bool>(pub), "publish on " + ns.host_ip);
    if (pub) {
      reader_lost(ns, sys, *pub, "killed", true);
      reader_lost(ns, sys, *pub, "cut", false);
    }
  }
  std::printf("%d failed\n", failures);
  return failures == 0 ? 0 : 1;
}

} // namespace asyncstream::test
