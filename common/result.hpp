// Value-or-error for every fallible library call.
//
// An Error carries the errno (0 when the failure is not a system call), the
// step that was attempted with its arguments, and context added on the way
// up, the way crun's libcrun_error_t does. Library code returns these and
// never exits; only the CLI decides what a failure means for the process.
#pragma once

#include <cerrno>
#include <string>
#include <utility>
#include <variant>

namespace kiln {

struct Error {
    int err = 0;           // errno, 0 if not a system error
    std::string step;      // what was attempted, e.g. "mount /proc"
    std::string message;   // human text, including what to do next

    // "step: message: strerror(err)" with the context chain prepended.
    std::string what() const;

    // Adds context from a caller: "while starting jail: <inner>".
    Error& wrap(const std::string& context);
};

Error make_error(std::string step, std::string message, int err = 0);
// Captures errno at the call site.
Error sys_error(std::string step, std::string message = {});

template <class T>
class [[nodiscard]] Result {
public:
    Result(T value) : v_(std::move(value)) {}
    Result(Error error) : v_(std::move(error)) {}

    bool ok() const { return v_.index() == 0; }
    explicit operator bool() const { return ok(); }

    T& value() & { return std::get<0>(v_); }
    const T& value() const& { return std::get<0>(v_); }
    T&& value() && { return std::get<0>(std::move(v_)); }
    T& operator*() & { return value(); }
    const T& operator*() const& { return value(); }
    T* operator->() { return &value(); }
    const T* operator->() const { return &value(); }

    const Error& error() const& { return std::get<1>(v_); }
    Error& error() & { return std::get<1>(v_); }
    Error&& error() && { return std::get<1>(std::move(v_)); }

private:
    std::variant<T, Error> v_;
};

template <>
class [[nodiscard]] Result<void> {
public:
    Result() = default;
    Result(Error error) : error_(std::move(error)), ok_(false) {}

    bool ok() const { return ok_; }
    explicit operator bool() const { return ok_; }
    const Error& error() const& { return error_; }
    Error& error() & { return error_; }
    Error&& error() && { return std::move(error_); }

private:
    Error error_;
    bool ok_ = true;
};

using Status = Result<void>;

}  // namespace kiln
