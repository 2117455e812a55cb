// Read-only MCP resources (kiln://policy, kiln://threat-model,
// kiln://audit/recent). Each resource renders its JSON when read, so it
// always shows the live state. Resource templates (kiln://workspace/{+path})
// read any URI under their prefix.
#pragma once

#include <nlohmann/json.hpp>

#include <functional>
#include <string>
#include <vector>

#include "common/result.hpp"
#include "tools/registry.hpp"

namespace kiln::tools {

struct Resource {
    std::string uri;
    std::string name;
    std::string title;
    std::string description;
    std::string mime_type = "application/json";
    std::function<nlohmann::json(const SessionInfo&)> render;
};

struct ResourceTemplate {
    std::string uri_template;  // RFC 6570, e.g. "kiln://workspace/{+path}"
    std::string prefix;        // the URIs it reads start with this
    std::string name;
    std::string title;
    std::string description;
    // The whole resources/read result for a URI under the prefix.
    std::function<Result<nlohmann::json>(const std::string& uri, const SessionInfo&)> read;
};

class ResourceSet {
public:
    void add(Resource r) { resources_.push_back(std::move(r)); }
    void add(ResourceTemplate t) { templates_.push_back(std::move(t)); }
    bool empty() const { return resources_.empty() && templates_.empty(); }
    nlohmann::json list() const;            // the resources/list result
    nlohmann::json list_templates() const;  // the resources/templates/list result
    // The resources/read result, or an error: ENOENT in Error::err for a URI
    // that names nothing (the error names the known URIs), another errno
    // for one that is refused (outside the workspace, too large).
    Result<nlohmann::json> read(const std::string& uri, const SessionInfo& session) const;

private:
    std::vector<Resource> resources_;
    std::vector<ResourceTemplate> templates_;
};

}  // namespace kiln::tools
