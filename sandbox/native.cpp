// The native runtime: Kiln's own jail. Work in progress.
#include "sandbox/runtime.hpp"

namespace kiln::sandbox {
namespace {

class NativeRuntime final : public Runtime {
public:
    std::string_view name() const override { return "native"; }
    const HostCapabilities& capabilities() const override { return caps_; }
    Result<ExecResult> run(const SandboxSpec&, const RunHooks&) override {
        return make_error("sandbox run", "not implemented yet");
    }

private:
    HostCapabilities caps_;
};

}  // namespace

Result<std::unique_ptr<Runtime>> make_native_runtime(const NativeOptions&) {
    return std::unique_ptr<Runtime>(new NativeRuntime());
}

Status reap_leftovers(const NativeOptions&) { return {}; }

}  // namespace kiln::sandbox
