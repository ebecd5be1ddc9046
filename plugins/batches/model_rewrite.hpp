// Rewriting a stored request body's `model` for an upstream that knows the model by another
// name (an alias in config: `gpt-4o-mini` served as `Qwen/Qwen2.5-7B-Instruct`).
//
// The body is sent byte for byte everywhere else, so only the value of the top-level "model"
// member is replaced: whitespace, member order, number spellings and escapes elsewhere stay as
// the user wrote them. A key spelled with escapes ("mod\u0065l") is the same member, as the
// batch-line validator reads it. Nested "model" members (in messages, tools) are left alone.
#pragma once

#include <string>
#include <string_view>

namespace batches {

// `body` (a JSON object, as validated) with its top-level "model" value replaced by the JSON
// string `model`; `body` unchanged when it has no top-level "model" member.
std::string with_model(std::string_view body, std::string_view model);

}  // namespace batches
