// Why a batch line with escapes parses as fast as one without: Boost.JSON's basic_parser scans an
// escape-free string in blocks, but once a string holds an escape (a "\n" in a prompt) it decodes
// the rest of it a byte at a time (parse_escaped), which made that one function most of an
// upload's validation (perf of files_bench). The validator reads nothing of strings nested three
// or more containers deep (the line handler records custom_id, method, url, body and body.model:
// depths 1 and 2), so there the escapes can be masked before the parser sees the bytes.
//
// escape_mask follows one line's bytes, piece by piece, tracking what the parser will see:
// inside a string or not, an escape begun in the previous piece, and the container depth. In a
// string at depth >= 3, an escape that the parser would accept is replaced by as many 'x' bytes
// (same length: offsets and every later byte unchanged): \" \\ \/ \b \f \n \r \t, \uXXXX outside
// the surrogates, and a \uD8xx-\uDBxx \uDCxx-\uDFxx pair. Everything else is left as it is, so
// the parser judges it itself: an invalid escape, a lone surrogate, an escape cut by the end of
// the piece; after an escape the parser refuses, nothing more of the line is masked. The verdict is unchanged because, up to the first byte the parser rejects, this
// tracking agrees with the parser exactly (a valid JSON prefix has quotes only as string
// delimiters and backslashes only inside strings), and masking turns an accepted escape into
// accepted plain characters of a string whose content no rule reads. tests/batch_line checks
// the verdicts and fields against Boost.JSON's own parse of the unmasked line.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace aq::batch_line {

class escape_mask {
public:
    // Starts a new line.
    void reset() noexcept;
    // The bytes the parser is given for the line's next piece: `piece` itself when nothing in
    // it is masked, else a masked copy held in this object (valid until the next apply()).
    std::string_view apply(std::string_view piece);

private:
    static constexpr std::size_t masked_depth = 3;

    bool in_string_ = false;
    bool escape_pending_ = false;  // the previous piece ended with a backslash in a string
    bool refused_ = false;         // an escape the parser refuses: nothing after it is masked
    std::size_t depth_ = 0;
    std::string copy_;
};

}  // namespace aq::batch_line
