// Fuzz target: plugins/files/byte_range.cpp, the Range header of downloads.
//
// Input: the file size in decimal, a newline, then the Range header value (a size that does not
// parse is taken from the input's bytes instead, so every input runs).
//
// Invariants:
//   - a partial range lies within the file: first <= last < size;
//   - an unsatisfiable answer only for a "bytes=" header;
//   - the range written back as "bytes=first-last" parses to the same range, and surrounding
//     blanks change nothing.
#include "invariant.hpp"
#include "piece_plan.hpp"

#include "byte_range.hpp"

#include <charconv>
#include <cstddef>
#include <cstdint>
#include <string>

namespace {

using aq::files::byte_range;
using kind = aq::files::byte_range::kind;

std::string describe(std::string_view header, std::uint64_t size, const byte_range& r) {
    const char* k = r.result == kind::whole ? "whole" : r.result == kind::partial ? "partial" : "unsatisfiable";
    return "\"" + std::string(header) + "\" size " + std::to_string(size) + " -> " + k + " " + std::to_string(r.first) +
           "-" + std::to_string(r.last);
}

bool same(const byte_range& a, const byte_range& b) {
    return a.result == b.result && (a.result != kind::partial || (a.first == b.first && a.last == b.last));
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    std::string_view input(reinterpret_cast<const char*>(data), size);
    std::uint64_t file_size = 0;
    std::string_view header = input;
    const auto newline = input.find('\n');
    bool sized = false;
    if (newline != std::string_view::npos) {
        auto [end, ec] = std::from_chars(input.data(), input.data() + newline, file_size);
        sized = ec == std::errc() && end == input.data() + newline;
        if (sized) header = input.substr(newline + 1);
    }
    if (!sized) file_size = aq::fuzz::piece_plan(input).below(1ull << 40);

    const byte_range r = byte_range::parse(header, file_size);
    const std::string what = describe(header, file_size, r);
    switch (r.result) {
    case kind::partial: {
        AQ_FUZZ_CHECK(r.first <= r.last && r.last < file_size, what);
        const std::string back = "bytes=" + std::to_string(r.first) + "-" + std::to_string(r.last);
        AQ_FUZZ_CHECK(same(byte_range::parse(back, file_size), r), what + " vs " + back);
        break;
    }
    case kind::unsatisfiable: {
        std::string_view h = header;
        while (!h.empty() && (h.front() == ' ' || h.front() == '\t')) h.remove_prefix(1);
        AQ_FUZZ_CHECK(h.starts_with("bytes="), what);
        break;
    }
    case kind::whole: break;
    }
    const std::string padded = " \t" + std::string(header) + "\t ";
    AQ_FUZZ_CHECK(same(byte_range::parse(padded, file_size), r), what + " vs padded");
    return 0;
}
