#include "tools/resources.hpp"

namespace kiln::tools {

using nlohmann::json;

json ResourceSet::list() const {
    json out = json::array();
    for (const auto& r : resources_)
        out.push_back({{"uri", r.uri}, {"name", r.name}, {"title", r.title}, {"description", r.description}, {"mimeType", r.mime_type}});
    return {{"resources", out}};
}

Result<json> ResourceSet::read(const std::string& uri, const SessionInfo& session) const {
    std::string known;
    for (const auto& r : resources_) {
        if (r.uri == uri)
            return json{{"contents", json::array({{{"uri", r.uri}, {"mimeType", r.mime_type}, {"text", r.render(session).dump(2)}}})}};
        known += (known.empty() ? "" : ", ") + r.uri;
    }
    return make_error("resources/read", "unknown resource '" + uri + "' (known: " + known + ")");
}

}  // namespace kiln::tools
