// Interface helpers shared by every runtime.
#include "sandbox/runtime.hpp"

namespace kiln::sandbox {

std::set<std::string> HostCapabilities::in_force() const {
    std::set<std::string> ids;
    for (const auto& c : controls)
        if (c.in_force) ids.insert(c.id);
    return ids;
}

}  // namespace kiln::sandbox
