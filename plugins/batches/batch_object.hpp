// The Batch object of API.md built from a stored row: every key present, null where unset.
#pragma once

#include "batch_table.hpp"

#include <boost/json/object.hpp>

namespace batches {

boost::json::object batch_object(const batch_row& b);

bool is_terminal(std::string_view status) noexcept;

}  // namespace batches
