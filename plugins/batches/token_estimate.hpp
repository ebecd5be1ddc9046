// A line's tokens as a rate limit counts them before the reply says: the prompt at 4 bytes a
// token (the bytes of every string under "messages", "prompt", "input" and "instructions",
// rounded up), plus what it may generate: "max_completion_tokens", "max_tokens" or
// "max_output_tokens" when the body gives one, else default_completion_tokens, and nothing
// for /v1/embeddings. The reply's usage.total_tokens corrects it (rate_allowance.hpp).
#pragma once

#include <string_view>

namespace batches {

long long estimate_tokens(std::string_view endpoint, std::string_view body);

}  // namespace batches
