// `kiln selftest --compliance` on this machine: the live selftest's evidence
// decides the benchmark lines it is mapped to (security/compliance.cpp names
// that evidence as the selftest words it; a probe renamed on one side only
// shows here as "no such evidence").
#include <nlohmann/json.hpp>
#include <sys/wait.h>

#include <array>
#include <cstdio>

#include "tests/sandbox/harness.hpp"

using namespace kiln::sandbox::test;

namespace {

std::string run_stdout(const std::string& cmd, int& code) {
    std::string out;
    FILE* p = ::popen(cmd.c_str(), "r");
    REQUIRE(p != nullptr);
    std::array<char, 4096> buf;
    size_t n;
    while ((n = std::fread(buf.data(), 1, buf.size(), p)) > 0) out.append(buf.data(), n);
    int st = ::pclose(p);
    code = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
    return out;
}

}  // namespace

TEST_CASE("kiln selftest --compliance: the live probes decide the lines mapped to them") {
    int code = -1;
    auto out = run_stdout(kiln_path() + " selftest --compliance --json", code);
    auto start = out.find('{');
    REQUIRE_MESSAGE(start != std::string::npos, out);
    auto j = nlohmann::json::parse(out.substr(start));
    std::map<std::string, nlohmann::json> line;
    for (const auto& l : j["lines"]) {
        line[l["section"].get<std::string>()] = l;
        for (const auto& d : l["decided_by"])
            CHECK_MESSAGE(d["answer"] != "no such evidence in the selftest report", l["section"] << " " << d["probe"]);
        if (l["verdict"] == "pass") CHECK_FALSE(l["decided_by"].empty());
    }
    // What the native jail always holds, as root and rootless.
    for (const char* s : {"5.4", "5.5", "5.6", "5.10", "5.13", "5.22", "5.26", "5.29", "5.31", "5.32", "4.4.2", "4.5.5"})
        CHECK_MESSAGE(line[s]["verdict"] == "pass", s << ": " << line[s]["reason"]);
    // Decided only where a memory cgroup can kill the jail; never a silent pass.
    if (is_root()) CHECK_MESSAGE(line["5.11"]["verdict"] != "fail", line["5.11"]["reason"]);
    CHECK(line["5.12"]["verdict"] == "not assessed");
    CHECK(j["summary"]["fail"].get<int>() + j["summary"]["pass"].get<int>() + j["summary"]["not_assessed"].get<int>() ==
          int(j["lines"].size()));
}
