#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

#include "tests/sandbox/harness.hpp"

namespace {

// Prints each case skipped as not applicable here (KILN_TEST_CASE_IF) with
// its reason, so the log says what was not tested, not only how many.
struct SkipListener : doctest::IReporter {
    std::ostream& out;
    bool forced;  // --no-skip: the cases run after all
    explicit SkipListener(const doctest::ContextOptions& in) : out(*in.cout), forced(in.no_skip) {}
    void test_case_skipped(const doctest::TestCaseData& tc) override {
        const char* reason = kiln::sandbox::test::skip_reason(tc.m_name);
        if (tc.m_skip && !forced && reason) out << "SKIPPED (not applicable here): " << tc.m_name << " -- " << reason << "\n";
    }
    void report_query(const doctest::QueryData&) override {}
    void test_run_start() override {}
    void test_run_end(const doctest::TestRunStats&) override {}
    void test_case_start(const doctest::TestCaseData&) override {}
    void test_case_reenter(const doctest::TestCaseData&) override {}
    void test_case_end(const doctest::CurrentTestCaseStats&) override {}
    void test_case_exception(const doctest::TestCaseException&) override {}
    void subcase_start(const doctest::SubcaseSignature&) override {}
    void subcase_end() override {}
    void log_assert(const doctest::AssertData&) override {}
    void log_message(const doctest::MessageData&) override {}
};

}  // namespace

DOCTEST_REGISTER_LISTENER("kiln-skips", 1, SkipListener);
