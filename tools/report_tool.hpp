// The security_report tool (read-only): the live selftest
// (security/selftest.hpp) run again on each call, the same report `kiln
// selftest --json` prints. SelftestReports keeps the latest one, measured
// at server start or by the last call, for kiln://threat-model.
#pragma once

#include <nlohmann/json.hpp>

#include <functional>
#include <mutex>

#include "security/selftest.hpp"
#include "tools/registry.hpp"

namespace kiln::tools {

class SelftestReports {
public:
    explicit SelftestReports(security::selftest::Options options) : options_(options) {}
    // Measures now and keeps the result as the latest.
    Result<security::selftest::Report> measure();
    // The latest report as JSON; null before the first measurement.
    nlohmann::json latest() const;

private:
    security::selftest::Options options_;
    mutable std::mutex mu_;
    nlohmann::json latest_;
};

void register_report_tool(Registry& registry, SelftestReports& reports);

}  // namespace kiln::tools
