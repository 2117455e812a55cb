// Read-only MCP resources (kiln://policy, kiln://threat-model,
// kiln://audit/recent). Each resource renders its JSON when read, so it
// always shows the live state.
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

class ResourceSet {
public:
    void add(Resource r) { resources_.push_back(std::move(r)); }
    bool empty() const { return resources_.empty(); }
    nlohmann::json list() const;  // the resources/list result
    // The resources/read result, or an error naming the known URIs.
    Result<nlohmann::json> read(const std::string& uri, const SessionInfo& session) const;

private:
    std::vector<Resource> resources_;
};

}  // namespace kiln::tools
