#include "core/error.h"

#include <utility>

namespace avatar {
namespace {
std::string compose(const std::string& subject, const std::string& message) {
    return subject.empty() ? message : subject + ": " + message;
}
}  // namespace

Error::Error(std::string subject, std::string message)
    : std::runtime_error(compose(subject, message)),
      subject_(std::move(subject)),
      message_(std::move(message)) {}

}  // namespace avatar
