#include "tools/resources.hpp"

#include <cerrno>

namespace kiln::tools {

using nlohmann::json;

json ResourceSet::list() const {
    json out = json::array();
    for (const auto& r : resources_)
        out.push_back({{"uri", r.uri}, {"name", r.name}, {"title", r.title}, {"description", r.description}, {"mimeType", r.mime_type}});
    return {{"resources", out}};
}

json ResourceSet::list_templates() const {
    json out = json::array();
    for (const auto& t : templates_)
        out.push_back({{"uriTemplate", t.uri_template}, {"name", t.name}, {"title", t.title}, {"description", t.description}});
    return {{"resourceTemplates", out}};
}

Result<json> ResourceSet::read(const std::string& uri, const SessionInfo& session) const {
    std::string known;
    for (const auto& r : resources_) {
        if (r.uri == uri)
            return json{{"contents", json::array({{{"uri", r.uri}, {"mimeType", r.mime_type}, {"text", r.render(session).dump(2)}}})}};
        known += (known.empty() ? "" : ", ") + r.uri;
    }
    for (const auto& t : templates_) {
        if (uri.rfind(t.prefix, 0) == 0) return t.read(uri, session);
        known += (known.empty() ? "" : ", ") + t.uri_template;
    }
    return make_error("resources/read", "unknown resource '" + uri + "' (known: " + known + ")", ENOENT);
}

}  // namespace kiln::tools
