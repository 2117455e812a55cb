// Interface commit: open() reports that the writer is not built yet, so
// callers can compile and link against the final API.
#include "security/audit/audit_log.hpp"

namespace kiln::audit {

class AuditLog::Impl {
public:
    std::string path;
};

AuditLog::AuditLog(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
AuditLog::~AuditLog() = default;

Result<std::unique_ptr<AuditLog>> AuditLog::open(const AuditConfig& cfg) {
    return make_error("open audit log " + cfg.path, "the audit log writer is not implemented yet");
}

Result<AuditRef> AuditLog::append(std::string_view, nlohmann::json) {
    return make_error("append audit record", "the audit log writer is not implemented yet");
}

bool AuditLog::healthy() const { return false; }
std::string AuditLog::last_error() const { return "not implemented yet"; }
int AuditLog::fd() const { return -1; }
const std::string& AuditLog::path() const { return impl_->path; }

}  // namespace kiln::audit
