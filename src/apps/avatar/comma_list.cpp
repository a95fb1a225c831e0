#include <sstream>

#include "apps/avatar/commands.h"

namespace avatar::cli {

std::vector<std::string> split_comma_list(const std::string& text) {
    std::vector<std::string> items;
    std::stringstream in(text);
    std::string item;
    while (std::getline(in, item, ','))
        if (!item.empty())
            items.push_back(item);
    return items;
}

}  // namespace avatar::cli
