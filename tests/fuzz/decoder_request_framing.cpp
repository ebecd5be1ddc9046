// frame_connection() through the host's own request_decoder, fed the way host/connection.cpp
// feeds it: whatever one read returned, consumed until the decoder stops taking bytes.
#include "request_framing.hpp"

#include "invariant.hpp"
#include "request_decoder.hpp"

#include <optional>

namespace aq::fuzz {
namespace {

using aqd::request_decoder;

framed_body to_framed(aqd::body_framing f) {
    switch (f) {
    case aqd::body_framing::length: return framed_body::length;
    case aqd::body_framing::chunked: return framed_body::chunked;
    case aqd::body_framing::none: break;
    }
    return framed_body::none;
}

class connection_reader {
public:
    explicit connection_reader(const framing_limits& limits) : limits_(limits) { next_request(); }

    // False once the host would stop reading this connection.
    bool feed(std::string_view bytes) {
        while (!bytes.empty()) {
            const auto before = decoder_->current();
            const std::size_t head_before = decoder_->head_bytes();
            const std::size_t used = decoder_->feed(bytes, current_.body);
            bytes.remove_prefix(used);
            current_.wire_bytes += used;
            const auto now = decoder_->current();
            // The connection loops on feed(): a call that takes nothing and changes nothing
            // would spin forever on a request that is still open.
            AQ_FUZZ_CHECK(used > 0 || now != before || now == request_decoder::state::complete ||
                              now == request_decoder::state::failed,
                          "feed() took no byte of a request still open");
            if (before == request_decoder::state::head && now != request_decoder::state::head &&
                now != request_decoder::state::failed)
                take_head(head_before + used);
            switch (now) {
            case request_decoder::state::head:
            case request_decoder::state::body: break;
            case request_decoder::state::failed:
                // Refused in its body: the request whose head got through is reported, incomplete.
                // How far into it the decoder read before refusing depends on where reads ended,
                // so its wire bytes are not part of the decision.
                if (before == request_decoder::state::body) {
                    current_.wire_bytes = 0;
                    result_.requests.push_back(std::move(current_));
                }
                result_.stop = framing_stop::refused;
                result_.status = decoder_->error().status;
                result_.error = decoder_->error().message;
                return false;
            case request_decoder::state::complete: {
                AQ_FUZZ_CHECK(decoder_->body_bytes() == current_.body.size(), "body_bytes() is not what was decoded");
                current_.body_complete = true;
                const bool keep_alive = current_.keep_alive;
                result_.requests.push_back(std::move(current_));
                if (!keep_alive) {
                    result_.stop = framing_stop::not_keep_alive;
                    return false;
                }
                next_request();
                break;
            }
            }
        }
        return true;
    }

    framing_result end_of_input() {
        if (decoder_->current() == request_decoder::state::body) {
            result_.requests.push_back(std::move(current_));
            result_.stop = framing_stop::incomplete;
        } else if (decoder_->head_bytes() > 0) {
            result_.stop = framing_stop::incomplete;
        }
        return std::move(result_);
    }

private:
    void next_request() {
        decoder_.emplace(limits_.max_header_bytes);
        current_ = framed_request{};
    }

    void take_head(std::size_t head_bytes) {
        const auto& h = decoder_->head();
        current_.method = h.method;
        current_.target = h.target;
        current_.version = h.version;
        current_.fields = h.fields;
        current_.header_bytes = head_bytes;
        current_.keep_alive = h.keep_alive;
        current_.framing = to_framed(h.framing);
        current_.content_length = h.content_length;
    }

    const framing_limits& limits_;
    std::optional<request_decoder> decoder_;
    framed_request current_;
    framing_result result_;
};

}  // namespace

framing_result frame_connection(const std::vector<std::string_view>& pieces, const framing_limits& limits) {
    connection_reader reader(limits);
    for (std::string_view piece : pieces)
        if (!reader.feed(piece)) break;
    return reader.end_of_input();
}

const char* to_string(framing_stop stop) {
    switch (stop) {
    case framing_stop::end_of_input: return "end of input";
    case framing_stop::not_keep_alive: return "not keep-alive";
    case framing_stop::refused: return "refused";
    case framing_stop::incomplete: return "incomplete";
    }
    return "?";
}

}  // namespace aq::fuzz
