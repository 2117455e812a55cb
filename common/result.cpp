#include "common/result.hpp"

#include <cstring>

namespace kiln {

std::string Error::what() const {
    std::string out = step;
    if (!message.empty()) out += (out.empty() ? "" : ": ") + message;
    if (err != 0) out += std::string(out.empty() ? "" : ": ") + std::strerror(err);
    return out;
}

Error& Error::wrap(const std::string& context) {
    step = step.empty() ? context : context + ": " + step;
    return *this;
}

Error make_error(std::string step, std::string message, int err) {
    return Error{err, std::move(step), std::move(message)};
}

Error sys_error(std::string step, std::string message) {
    int saved = errno;
    return Error{saved, std::move(step), std::move(message)};
}

}  // namespace kiln
