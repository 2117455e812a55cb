// Per-user kernel budgets (C007, T003; sandbox/ucounts.hpp): a jail runs
// under a user namespace owned by the server's uid, so the kernel charges
// what it takes to the server's user too. One jail takes everything it can
// and holds it; a second jail and this process (the server's user) must
// still get theirs.
#include <signal.h>
#include <sys/resource.h>
#include <sys/inotify.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <fstream>
#include <future>
#include <thread>

#include "tests/sandbox/harness.hpp"

using namespace kiln::sandbox;
using namespace kiln::sandbox::test;
using std::chrono::milliseconds;

namespace {

long host_value(const char* path) {
    std::ifstream in(path);
    long v = -1;
    in >> v;
    return v;
}

// "<budget> <count> <errno>" from the probe.
struct Taken {
    long count = -1;
    int err = -1;
};

Taken taken(const std::string& out, const std::string& budget) {
    auto v = parse(out);
    REQUIRE_MESSAGE(v.count(budget), "the probe did not report " << budget << ":\n" << out);
    Taken t;
    std::sscanf(v[budget].c_str(), "%ld %d", &t.count, &t.err);
    return t;
}

// This process can still queue a signal to itself (the server user's
// pending-signal budget is not spent).
bool host_can_queue_signal() {
    sigset_t set, old;
    sigemptyset(&set);
    sigaddset(&set, SIGRTMIN + 1);
    pthread_sigmask(SIG_BLOCK, &set, &old);
    siginfo_t info{};
    info.si_code = SI_QUEUE;
    info.si_pid = ::getpid();
    info.si_uid = ::getuid();
    bool ok = ::syscall(SYS_rt_tgsigqueueinfo, ::getpid(), ::gettid(), SIGRTMIN + 1, &info) == 0;
    if (ok) {
        timespec zero{};
        (void)::sigtimedwait(&set, nullptr, &zero);
    }
    pthread_sigmask(SIG_SETMASK, &old, nullptr);
    return ok;
}

}  // namespace

TEST_CASE("per-user budgets: a jail takes only its share; another jail and the host keep theirs (C007 T003)") {
    LeakCheck leaks;
    std::promise<void> holding;
    std::atomic<bool> signalled{false};
    auto signal_once = [&] {
        if (!signalled.exchange(true)) holding.set_value();
    };
    RunHooks hooks;
    hooks.on_output = [&](std::string_view text, bool is_stderr) {
        if (!is_stderr && text.find("holding") != std::string_view::npos) signal_once();
    };
    auto greedy = probe_spec({"budgets", "30"});
    greedy.limits.timeout = milliseconds(60'000);
    std::stop_source stop;
    hooks.stop = stop.get_token();
    kiln::Result<ExecResult> first = kiln::make_error("not run", "");
    std::thread holder([&] {
        first = runtime().run(greedy, hooks);
        signal_once();
    });
    holding.get_future().wait();

    // While the first jail holds everything it could take:
    auto second = run_ok(probe_spec({"budgets", "0"}));
    int ifd = ::inotify_init1(IN_CLOEXEC);
    bool host_inotify = ifd >= 0;
    if (ifd >= 0) ::close(ifd);
    bool host_signal = host_can_queue_signal();
    stop.request_stop();
    holder.join();

    REQUIRE(first);
    const std::string& a = first->stdout_data;
    const std::string& b = second.stdout_data;
    INFO("first jail:\n" << a << "second jail:\n" << b);
    CHECK(second.exit_code == 0);
    CHECK(host_inotify);
    CHECK(host_signal);

    // inotify instances: a small share, the same for both jails, refused with EMFILE.
    long host_instances = host_value("/proc/sys/user/max_inotify_instances");
    auto ia = taken(a, "inotify_instances"), ib = taken(b, "inotify_instances");
    CHECK(ia.count >= 1);
    CHECK(ia.count <= host_instances / 2);
    CHECK(ib.count == ia.count);
    CHECK(ia.err == EMFILE);
    // inotify watches: refused with ENOSPC at a share of the host's.
    long host_watches = host_value("/proc/sys/user/max_inotify_watches");
    auto wa = taken(a, "inotify_watches"), wb = taken(b, "inotify_watches");
    CHECK(wa.count >= 16);
    CHECK(wa.count <= host_watches / 2);
    CHECK(wb.count == wa.count);
    CHECK(wa.err == ENOSPC);
    // Pending signals: the jail's own rlimit, a share of the server's.
    rlimit sig{};
    ::getrlimit(RLIMIT_SIGPENDING, &sig);
    auto sa = taken(a, "sigpending"), sb = taken(b, "sigpending");
    CHECK(sa.count >= 16);
    CHECK(static_cast<rlim_t>(sa.count) <= sig.rlim_cur / 2);
    CHECK(sb.count == sa.count);
    CHECK(sa.err == EAGAIN);
    // POSIX message queues: Landlock refuses the open of a queue (it is a
    // file outside the ruleset), so no program reaches this budget where
    // Landlock is in force; without it the jail's RLIMIT_MSGQUEUE share holds.
    auto ma = taken(a, "mqueue"), mb = taken(b, "mqueue");
    CHECK(mb.count == ma.count);
    if (runtime().capabilities().in_force().count("C010")) {
        CHECK(ma.err == EACCES);
        CHECK(ma.count == 0);
    } else {
        CHECK(ma.err == EMFILE);
    }
    rlimit mq{};
    ::getrlimit(RLIMIT_MSGQUEUE, &mq);
    CHECK(static_cast<rlim_t>(ma.count) * 10 * 1024 <= mq.rlim_cur / 2);
    leaks.verify();
}
