// Response and request header fields as the host keeps them: name and value, in order.
#pragma once

#include <string>
#include <utility>
#include <vector>

namespace aqd {

using header_list = std::vector<std::pair<std::string, std::string>>;

}  // namespace aqd
