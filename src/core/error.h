#pragma once
// The one exception type of avatar.cpp. Every error names the input at fault (a file, a flag, a
// tensor), so that the CLI can print a single line a user can act on: "<subject>: <message>".
#include <stdexcept>
#include <string>

namespace avatar {

class Error : public std::runtime_error {
public:
    // `subject` names what is at fault (a path, "--threads", "tensor 'w'"); may be empty.
    Error(std::string subject, std::string message);

    const std::string& subject() const noexcept { return subject_; }
    const std::string& message() const noexcept { return message_; }

private:
    std::string subject_;
    std::string message_;
};

// Throws Error(subject, message) unless `condition` holds.
inline void check(bool condition, const std::string& subject, const std::string& message) {
    if (!condition)
        throw Error(subject, message);
}

}  // namespace avatar
