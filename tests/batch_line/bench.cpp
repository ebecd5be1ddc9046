// batch_line_bench: how fast the batch-line validator reads a batch file, beside references
// measured in the same run on the same bytes. A program, not a test:
//
//   build/tests/batch_line/batch_line_bench [--lines N] [--line-bytes B] [--content x|prose]
//
// The user message of each line is 'x's (the default) or files_bench's prose (escapes and
// two-byte UTF-8, which the validator's escape masking and UTF-8 check meet in real prompts).
// Prints MB/s for: memchr line splitting alone (the floor: touching the bytes), Boost.JSON's
// basic_parser with a handler that does nothing (parsing alone), and the validator (parsing,
// UTF-8, the rules and the custom_id set), each the best of three runs.
#include "batch_line/validator.hpp"

#include <boost/json/basic_parser_impl.hpp>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <functional>
#include <string>

namespace {

namespace json = boost::json;

struct null_handler {
    static constexpr std::size_t max_object_size = std::size_t(-1);
    static constexpr std::size_t max_array_size = std::size_t(-1);
    static constexpr std::size_t max_key_size = std::size_t(-1);
    static constexpr std::size_t max_string_size = std::size_t(-1);
    bool on_document_begin(json::error_code&) { return true; }
    bool on_document_end(json::error_code&) { return true; }
    bool on_object_begin(json::error_code&) { return true; }
    bool on_object_end(std::size_t, json::error_code&) { return true; }
    bool on_array_begin(json::error_code&) { return true; }
    bool on_array_end(std::size_t, json::error_code&) { return true; }
    bool on_key_part(json::string_view, std::size_t, json::error_code&) { return true; }
    bool on_key(json::string_view, std::size_t, json::error_code&) { return true; }
    bool on_string_part(json::string_view, std::size_t, json::error_code&) { return true; }
    bool on_string(json::string_view, std::size_t, json::error_code&) { return true; }
    bool on_number_part(json::string_view, json::error_code&) { return true; }
    bool on_int64(std::int64_t, json::string_view, json::error_code&) { return true; }
    bool on_uint64(std::uint64_t, json::string_view, json::error_code&) { return true; }
    bool on_double(double, json::string_view, json::error_code&) { return true; }
    bool on_bool(bool, json::error_code&) { return true; }
    bool on_null(json::error_code&) { return true; }
    bool on_comment_part(json::string_view, json::error_code&) { return true; }
    bool on_comment(json::string_view, json::error_code&) { return true; }
};

double best_mb_per_s(const std::string& data, const std::function<void()>& run) {
    double best = 1e30;
    for (int i = 0; i < 3; ++i) {
        auto t0 = std::chrono::steady_clock::now();
        run();
        best = std::min(best, std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
    }
    return data.size() / best / 1e6;
}

// Calls fn(line) for each line of data, found with memchr.
template <class Fn>
void each_line(std::string_view data, Fn fn) {
    while (!data.empty()) {
        const void* nl = std::memchr(data.data(), '\n', data.size());
        std::size_t n = nl ? static_cast<std::size_t>(static_cast<const char*>(nl) - data.data()) : data.size();
        fn(data.substr(0, n));
        data.remove_prefix(nl ? n + 1 : n);
    }
}

// The user message of each line: plain 'x's, or files_bench's prose (an escape every ~55 bytes
// and two-byte UTF-8; never cut mid-escape: the rest is padded with spaces).
std::string content(const std::string& kind, std::size_t room) {
    static const std::string prose =
        "Summarize the following report in three sentences, keeping every figure: "
        "the caf\xc3\xa9 on the corner sold 1,204 cups in M\xc3\xa4rz, "
        "up from 987 \\\"last year\\\";\\nthe bakery next door, 3.5% fewer loaves. ";
    if (kind == "x") return std::string(room, 'x');
    std::string out;
    while (out.size() + prose.size() <= room) out += prose;
    return out.append(room - out.size(), ' ');
}

}  // namespace

int main(int argc, char** argv) {
    std::size_t lines = 1000000, line_bytes = 537;
    std::string kind = "x";
    for (int i = 1; i + 1 < argc; i += 2) {
        if (std::strcmp(argv[i], "--lines") == 0) lines = std::stoul(argv[i + 1]);
        else if (std::strcmp(argv[i], "--line-bytes") == 0) line_bytes = std::stoul(argv[i + 1]);
        else if (std::strcmp(argv[i], "--content") == 0) kind = argv[i + 1];
    }
    if (kind != "x" && kind != "prose") {
        std::fprintf(stderr, "--content is x or prose\n");
        return 2;
    }
    std::string data;
    data.reserve(lines * line_bytes);
    for (std::size_t i = 0; i < lines; ++i) {
        std::string line = R"({"custom_id":"request-)" + std::to_string(i) +
                           R"(","method":"POST","url":"/v1/chat/completions","body":{"model":"m","messages":[{"role":"user","content":")";
        const std::string end = "\"}]}}\n";
        line += content(kind, line_bytes > line.size() + end.size() ? line_bytes - line.size() - end.size() : 0);
        data += line + end;
    }
    std::printf("%zu lines of %s, %.1f MB\n", lines, kind.c_str(), data.size() / 1e6);

    std::size_t count = 0;
    double framing = best_mb_per_s(data, [&] { each_line(data, [&](std::string_view) { ++count; }); });
    double parsing = best_mb_per_s(data, [&] {
        json::basic_parser<null_handler> p(json::parse_options{});
        each_line(data, [&](std::string_view l) {
            p.reset();
            json::error_code ec;
            p.write_some(false, l.data(), l.size(), ec);
            if (ec) std::abort();
        });
    });
    double validating = best_mb_per_s(data, [&] {
        aq::batch_line::options o;
        o.limit.max_requests = lines;
        aq::batch_line::validator v(o);
        for (std::size_t off = 0; off < data.size(); off += 256 * 1024)
            v.push(std::string_view(data).substr(off, 256 * 1024));
        v.finish();
        if (v.failed()) std::abort();
    });
    std::printf("memchr framing        %7.0f MB/s\n", framing);
    std::printf("basic_parser, no-op   %7.0f MB/s\n", parsing);
    std::printf("batch_line validator  %7.0f MB/s  (%.2f of parsing alone)\n", validating, validating / parsing);
    return count == 0;
}
