// Standard Webhooks signing (https://www.standardwebhooks.com/), as OpenAI signs its events and
// the SDKs' webhooks.unwrap() verifies them:
//   webhook-signature: v1,<base64 of HMAC-SHA256(key, "<webhook-id>.<webhook-timestamp>.<body>")>
// where key is the secret's bytes: "whsec_" + base64 in config.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace batches {

// The key bytes of a "whsec_<base64>" secret; nullopt when the prefix is missing or the rest is
// not strict base64 (RFC 4648 alphabet, with its padding).
std::optional<std::string> decode_webhook_secret(std::string_view secret);

// "v1,<base64 HMAC-SHA256>" for one delivery attempt.
std::string webhook_signature(std::string_view key, std::string_view webhook_id, long long timestamp,
                              std::string_view body);

}  // namespace batches
