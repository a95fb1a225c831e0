#include <iostream>

#include "apps/avatar/commands.h"

namespace avatar::cli {

void print_json(const nlohmann::json& value) {
    std::cout << value.dump(2) << std::endl;
}

}  // namespace avatar::cli
