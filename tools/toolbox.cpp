#include "tools/toolbox.hpp"

#include <unistd.h>

#include <spdlog/spdlog.h>

#include "sandbox/docker.hpp"
#include "security/run_limits.hpp"
#include "threat_model/catalogue.hpp"
#include "tools/conformance_fixtures.hpp"
#include "tools/debug_tools.hpp"
#include "tools/file_tools.hpp"
#include "tools/rich_content.hpp"
#include "common/units.hpp"

namespace kiln::tools {

using nlohmann::json;

// A session's memory group holds its workspace (pages and the kernel memory
// of max_files inodes and their dentries, about 1 KiB each on this kernel;
// 2 KiB is allowed), as many runs at their largest as may run at once,
// and its persistent interpreter. Runs keep their own smaller limits; this
// one bounds what they leave behind.
std::uint64_t session_memory_limit(const Config& config, const security::Policy& policy) {
    constexpr std::uint64_t kInodeKernelBytes = 2048;
    return config.workspace.size_bytes + config.workspace.max_files * kInodeKernelBytes +
           std::uint64_t{config.workspace.max_runs_per_session} * policy.max_memory_bytes +
           config.interpreter.memory_bytes;
}

Result<std::unique_ptr<sandbox::Runtime>> make_runtime(const Config& config, const security::Policy& policy,
                                                       const sandbox::NativeOptions& native, unsigned docker_pool_size) {
    switch (config.sandbox.runtime) {
        case RuntimeKind::Native: {
            auto runtime = sandbox::make_native_runtime(native);
            if (!runtime) return Error(runtime.error()).wrap("start the native sandbox runtime");
            return runtime;
        }
        case RuntimeKind::Docker: {
            sandbox::DockerOptions d;
            d.image = config.docker.image;
            d.allowed_images = config.docker.allowed_images;
            d.pool_size = docker_pool_size;
            d.max_age = config.docker.max_age;
            d.state_dir = config.server.state_dir + "/docker";
            // Pooled containers get the policy's limits: the limits most runs have.
            sandbox::SandboxSpec typical;
            security::apply_run_limits(typical, policy, config.sandbox);
            d.pool_limits = typical.limits;
            d.pool_seccomp = typical.seccomp;
            auto runtime = sandbox::make_docker_runtime(d);
            if (!runtime) return Error(runtime.error()).wrap("start the docker sandbox runtime (sandbox.runtime: docker)");
            return runtime;
        }
    }
    return make_error("sandbox.runtime", "unknown runtime", EINVAL);
}

Result<std::unique_ptr<Toolbox>> Toolbox::create(const Config& config) {
    std::unique_ptr<Toolbox> box(new Toolbox(config));

    // The audit log first: with on_failure=fail_closed a log that cannot be
    // opened stops the server before it runs anything unrecorded.
    AuditConfig audit_config = config.audit;
    audit_config.replica = replica_id(config);
    auto audit = audit::AuditLog::open(audit_config);
    if (!audit) {
        if (config.audit.on_failure == AuditOnFailure::FailClosed)
            return Error(audit.error()).wrap("open the audit log (audit.path; set audit.on_failure=continue to run without it)");
        spdlog::error("audit log unavailable, continuing without it (audit.on_failure=continue): {}", audit.error().what());
    } else {
        box->audit_ = std::move(*audit);
    }

    auto policy = security::effective_policy(config);
    if (!policy) return Error(policy.error()).wrap("load the policy");
    box->policy_ = std::move(*policy);

    sandbox::NativeOptions native;
    native.max_runs = config.workspace.max_runs_total;
    if (Status st = sandbox::reap_leftovers(); !st) spdlog::warn("reaping leftovers: {}", st.error().what());
    auto runtime = make_runtime(config, box->policy_, native, config.docker.pool_size);
    if (!runtime) return runtime.error();
    box->runtime_ = std::move(*runtime);
    box->reports_ = std::make_unique<SelftestReports>(
        security::selftest::Options{&box->config_, &box->policy_, box->runtime_.get(), box->audit_.get(), {}});
    if (Status st = box->check_controls(); !st) return st.error();

    WorkspaceOptions ws;
    ws.root_dir = config.server.state_dir + "/workspaces/" + std::to_string(::getpid());
    ws.size_bytes = config.workspace.size_bytes;
    ws.max_files = config.workspace.max_files;
    ws.idle_ttl = config.workspace.idle_ttl;
    ws.max_sessions = config.workspace.max_sessions;
    ws.owner_uid = box->runtime_->capabilities().host_uid;
    ws.owner_gid = box->runtime_->capabilities().host_gid;
    ws.session_network = config.workspace.network == WorkspaceNetwork::Session && !box->runtime_->capabilities().rootless;
    ws.runtime = box->runtime_.get();
    // Per-session host ids keep sessions' native jails off each other's
    // per-user kernel budgets. Docker's pooled containers are made before a
    // session claims one, as the runtime's one user: sessions are kept
    // apart by their containers and workspace mounts there.
    if (!box->runtime_->capabilities().rootless && config.sandbox.runtime == RuntimeKind::Native)
        ws.session_ids = std::make_shared<HostIdPool>(config.sandbox.host_ids,
                                                      config.workspace.max_sessions + config.workspace.max_runs_total);
    ws.session_memory_bytes = session_memory_limit(config, box->policy_);
    box->workspaces_ = std::make_unique<WorkspaceManager>(ws);
    if (Status st = box->workspaces_->remove_leftovers(); !st)
        return Error(st.error()).wrap("prepare workspaces under " + ws.root_dir);
    box->workspaces_->start_reaper(std::chrono::milliseconds(std::min<long long>(60'000, ws.idle_ttl.count())));
    if (Status st = box->open_store(); !st) return st.error();
    // Replicas share approvals through the shared dir: every change is a
    // read-modify-write under the trust store's lock file, and every
    // check reads the file afresh, so one replica's approval holds on all.
    box->trust_ = std::make_unique<security::TrustStore>(trust_store_path(config));
    box->runs_ = std::make_unique<RunService>(config, box->policy_, *box->runtime_, box->audit_.get(),
                                              *box->store_, *box->trust_);

    register_run_tools(box->registry_, *box->runs_);
    register_file_tools(box->registry_, *box->store_);
    register_report_tool(box->registry_, *box->reports_);
    if (config.server.test_tools) {
        register_debug_tools(box->registry_);
        register_conformance_fixtures(box->registry_);
    }
    box->add_resources();
    if (box->audit_)
        (void)box->audit_->append("server", {{"action", "start"}, {"policy", box->policy_.name},
                                             {"runtime", std::string(box->runtime_->name())}});
    return box;
}

Status Toolbox::open_store() {
    const WorkspaceConfig& w = config_.workspace;
    if (w.store == WorkspaceStoreKind::Shared && w.shared_dir.empty())
        return make_error("workspace.store", "is shared but workspace.shared_dir is empty; set it to a directory "
                                             "every replica mounts");
    SharedStoreOptions shared;
    shared.dir = w.shared_dir + "/workspaces";
    shared.replica_id = replica_id(config_);
    shared.max_bytes = w.size_bytes;
    shared.max_inodes = w.max_files;
    shared.idle_ttl = w.idle_ttl;
    shared.lock_wait = w.queue_wait;
    store_ = std::make_unique<WorkspaceStore>(*workspaces_, w.store, shared);
    if (Status st = store_->prepare(); !st) return st;
    // A shared store is swept by every replica at once; the lock decides.
    store_->sweep();
    store_->start_sweeper(std::chrono::milliseconds(std::min<long long>(60'000, w.idle_ttl.count())));
    return {};
}

Toolbox::~Toolbox() {
    if (audit_) (void)audit_->append("server", {{"action", "stop"}});
}

// The live selftest at start: degraded and missing controls are logged, and
// a missing control the policy requires stops the server unless the
// operator said otherwise (server.allow_missing_controls).
Status Toolbox::check_controls() {
    auto report = reports_->measure();
    if (!report) return Error(report.error()).wrap("run the selftest at start");
    for (const auto& c : report->controls) {
        if (c.status == security::selftest::ControlStatus::InForce) continue;
        spdlog::warn("control {} {} {}: {}", c.id, c.required ? "(required)" : "(optional)",
                     security::selftest::to_string(c.status), c.summary);
    }
    auto missing = report->missing_required();
    std::string list;
    for (const auto& id : missing) list += (list.empty() ? "" : " ") + id;
    spdlog::info("selftest: {} of {} controls in force, measured in {} ms", report->in_force().size(),
                 report->controls.size(), report->duration.count());
    if (missing.empty()) return {};
    if (config_.server.allow_missing_controls) {
        spdlog::warn("starting without required controls {} (server.allow_missing_controls)", list);
        return {};
    }
    return make_error("selftest", "required controls missing: " + list +
                                      " (see `kiln selftest`; --allow-missing-controls starts anyway)");
}

Status Toolbox::ready() {
    if (audit_ && !audit_->healthy()) return make_error("ready", "the audit log cannot take records (see its earlier error)");
    sandbox::SandboxSpec spec;
    spec.argv = {"/bin/true"};
    spec.cwd = "/tmp";
    security::apply_run_limits(spec, policy_, config_.sandbox);
    auto run = runtime_->run(spec, {});
    if (!run) return make_error("ready", "the runtime cannot start a jail: " + run.error().what());
    if (run->exit_code != 0)
        return make_error("ready", "a jail running /bin/true exited with " + std::to_string(run->exit_code.value_or(-1)));
    return {};
}

void Toolbox::session_closed(const std::string& session_id) {
    runs_->end_interpreter(session_id);  // before its workspace, which the jail binds
    workspaces_->release(session_id);
    runs_->forget_session(session_id);
    if (audit_) (void)audit_->append("session", {{"action", "end"}, {"session_id", session_id}});
}

void Toolbox::add_resources() {
    resources_.add({"kiln://policy", "policy", "Active policy and limits",
                    "The policy preset in force, its thresholds, the sandbox limits a run gets and the bounds an agent may ask for.",
                    "application/json", [this](const SessionInfo&) {
                        json p = policy_.to_json();
                        p["validation"] = choice_name(config_.policy.validation);
                        p["languages"] = json::array();
                        for (const auto& i : runs_->interpreters()) p["languages"].push_back(i.language);
                        return p;
                    }});
    resources_.add({"kiln://threat-model", "threat-model", "Threat model with the live selftest",
                    "Threats T001-T005 and controls C001-C013 as the catalogue defines them, and `selftest`: the "
                    "latest security_report (measured at start or by the last security_report call).",
                    "application/json", [this](const SessionInfo&) {
                        const auto& cat = threat_model::catalogue();
                        json threats = json::array(), controls = json::array();
                        for (const auto& t : cat.threats)
                            threats.push_back({{"id", t.id}, {"name", t.name}, {"description", t.description},
                                               {"impact", threat_model::to_string(t.impact)},
                                               {"probability", threat_model::to_string(t.probability)},
                                               {"controls", t.controls}});
                        for (const auto& c : cat.controls)
                            controls.push_back({{"id", c.id}, {"name", c.name}, {"description", c.description},
                                                {"how_verified", c.how_verified}});
                        return json{{"threats", threats}, {"controls", controls}, {"selftest", reports_->latest()}};
                    }});
    resources_.add({"kiln://audit/recent", "audit-recent", "Recent audit records of this session",
                    "The last 50 audit records this session produced (code omitted).", "application/json",
                    [this](const SessionInfo& s) { return runs_->recent_audit(s.id); }});
    // The links run_code returns point here; reads are confined and bounded
    // as read_file's are.
    resources_.add(ResourceTemplate{
        "kiln://workspace/{+path}", std::string(rich::kWorkspaceUriPrefix), "workspace-file", "A file of this session's workspace",
        "A file under /workspace, e.g. one a run created (run_code returns them as resource_link items): text as "
        "`text`, binary as `blob` (base64), at most " + format_size(FileToolLimits{}.max_read_bytes) + ".",
        [this](const std::string& uri, const SessionInfo& s) -> Result<json> {
            auto ws = workspaces_->acquire(s.id);
            if (!ws) return ws.error();
            return rich::read_workspace_resource((*ws)->dir_fd(), uri, FileToolLimits{}.max_read_bytes);
        }});
}

}  // namespace kiln::tools
