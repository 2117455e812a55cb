#include "sandbox/jail.hpp"

namespace kiln::sandbox {

void JailPlan::seal() {
    std::string dirs;
    for (const auto& d : path_dirs) dirs += (dirs.empty() ? "" : ":") + d;
    init_argv_storage = {"kiln-init", cwd, dirs, seccomp == SeccompProfile::Strict ? "strict" : "default", "--"};
    init_argv_storage.insert(init_argv_storage.end(), argv_storage.begin(), argv_storage.end());
    init_argv.clear();
    envp.clear();
    for (auto& a : init_argv_storage) init_argv.push_back(a.data());
    init_argv.push_back(nullptr);
    for (auto& v : env_storage) envp.push_back(v.data());
    envp.push_back(nullptr);
}

}  // namespace kiln::sandbox
