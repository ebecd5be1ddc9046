// escape_mask (plugins/batch_line): which escapes it masks, and that masking never changes what
// the line parser decides: verdicts and fields against Boost.JSON's own parse of the unmasked
// line, over generated lines with valid, invalid and cut escapes at every depth, split into
// pieces anywhere.
#include <boost/test/unit_test.hpp>

#include "batch_line/escape_mask.hpp"
#include "batch_line/line_rules.hpp"

#include <boost/json.hpp>

#include <cctype>
#include <algorithm>
#include <random>
#include <string_view>
#include <string>
#include <vector>

namespace bl = aq::batch_line;
namespace json = boost::json;

namespace {

// The bytes the parser is given for `pieces`, in order.
std::string masked(const std::vector<std::string>& pieces) {
    bl::escape_mask m;
    m.reset();
    std::string out;
    for (const auto& p : pieces) out += m.apply(p);
    return out;
}

std::string masked(const std::string& line) { return masked(std::vector<std::string>{line}); }

// One byte of `line` changed, dropped or added (a quote, a backslash, a bracket, a colon, a
// comma, 'u' or '0': what breaks JSON, strings and escapes).
void damage(std::string& line, std::mt19937& rng) {
    static constexpr char bytes[] = "\"\\{}[]:,u0";
    const std::size_t at = rng() % line.size();
    switch (rng() % 3) {
    case 0: line[at] = bytes[rng() % 10]; break;
    case 1: line.erase(at, 1); break;
    default: line.insert(at, 1, bytes[rng() % 10]); break;
    }
}

// escape_mask.hpp's rules a byte at a time, as plainly as they can be written: what apply()
// must return, piece by piece, byte for byte (apply() itself goes from event to event, 64 bytes
// of them at a time).
class reference_mask {
public:
    std::string apply(const std::string& piece) {
        std::string out = piece;
        std::size_t i = 0;
        if (pending_ && i < piece.size()) {
            pending_ = false;
            ++i;
        }
        while (i < piece.size()) {
            const char c = piece[i];
            if (!in_string_) {
                if (c == '"') in_string_ = true;
                if (c == '{' || c == '[') ++depth_;
                if ((c == '}' || c == ']') && depth_ > 0) --depth_;
                ++i;
            } else if (c == '"') {
                in_string_ = false;
                ++i;
            } else if (c != '\\') {
                ++i;
            } else {
                const long n = depth_ >= 3 && !refused_ ? judge(piece, i) : 0;
                if (n == 0 && depth_ >= 3) refused_ = true;
                if (n > 0) {
                    out.replace(i, n, std::string(n, 'x'));
                    i += n;
                } else if (i + 1 < piece.size()) {
                    i += 2;
                } else {
                    pending_ = true;
                    i += 1;
                }
            }
        }
        return out;
    }

private:
    // The accepted escape's length at s[i] (a backslash), 0 when Boost.JSON refuses it, -1 when
    // the piece ends before it does.
    static long judge(const std::string& s, std::size_t i) {
        auto hex = [&](std::size_t at) -> long {  // four hex digits at `at`, -1 if not, -2 if cut
            if (at + 4 > s.size()) {
                for (std::size_t k = at; k < s.size(); ++k)
                    if (!std::isxdigit(static_cast<unsigned char>(s[k]))) return -1;
                return -2;
            }
            for (std::size_t k = at; k < at + 4; ++k)
                if (!std::isxdigit(static_cast<unsigned char>(s[k]))) return -1;
            return std::stol(s.substr(at, 4), nullptr, 16);
        };
        if (i + 1 >= s.size()) return -1;
        if (std::string_view("\"\\/bfnrt").find(s[i + 1]) != std::string_view::npos) return 2;
        if (s[i + 1] != 'u') return 0;
        const long u1 = hex(i + 2);
        if (u1 < 0) return u1 == -2 ? -1 : 0;
        if (u1 < 0xD800 || u1 > 0xDFFF) return 6;
        if (u1 > 0xDBFF) return 0;
        if (i + 12 > s.size()) return -1;
        if (s[i + 6] != '\\' || s[i + 7] != 'u') return 0;
        const long u2 = hex(i + 8);
        return u2 >= 0xDC00 && u2 <= 0xDFFF ? 12 : 0;
    }

    bool in_string_ = false, pending_ = false, refused_ = false;
    std::size_t depth_ = 0;
};

}  // namespace

BOOST_AUTO_TEST_CASE(escapes_are_masked_in_strings_three_containers_deep_only) {
    // depth 1 (custom_id), 2 (body.model): left; 4 (messages[0].content): masked, same length.
    const std::string line = R"({"custom_id":"a\nb","body":{"model":"m\"1","messages":[{"content":"x\ny\"z\\w\/v\u00e9\ud83d\ude00."}]}})";
    const std::string want = R"({"custom_id":"a\nb","body":{"model":"m\"1","messages":[{"content":"xxxyxxzxxwxxvxxxxxxxxxxxxxxxxxx."}]}})";
    BOOST_TEST(masked(line) == want);
    // Keys that deep are masked too (no rule reads them); an array at depth 3 is deep enough.
    BOOST_TEST(masked(R"({"b":{"s":["a\tb"],"k":{"\n":1}}})") == R"({"b":{"s":["axxb"],"k":{"xx":1}}})");
    // Nothing to mask: the piece itself comes back.
    bl::escape_mask m;
    m.reset();
    const std::string plain = R"({"a":{"b":[{"c":"plain"}]}})";
    BOOST_TEST(m.apply(plain).data() == plain.data());
}

BOOST_AUTO_TEST_CASE(escapes_the_parser_would_refuse_or_cut_by_a_piece_are_left_for_it) {
    const std::string deep = R"({"a":{"b":[")";
    const std::string end = R"("]}})";
    for (const std::string esc : {R"(\q)", R"(\u12G4)", R"(\udc00)", R"(\ud800x)", R"(\ud800\u0041)",
                                  R"(\ud800\n)", R"(\u00)"})
        BOOST_TEST(masked(deep + esc + end) == deep + esc + end, esc);
    // Cut between pieces: left as sent; what follows is still read right (the escaped quote does
    // not end the string, the next one does, and the escape after it is masked again).
    BOOST_TEST(masked({deep + R"(a\)", R"("b\n)" + end}) == deep + R"(a\"bxx)" + end);
    BOOST_TEST(masked({deep + R"(a\u00)", R"(e9\n)" + end}) == deep + R"(a\u00e9xx)" + end);
    // Quotes and backslashes outside strings are not escapes.
    BOOST_TEST(masked(R"({"a":{"b":[1]}}\"\n)") == R"({"a":{"b":[1]}}\"\n)");
}

// Generated lines: a batch-like object with strings at every depth, escapes valid and not, then
// sometimes a byte changed, dropped or added (so half the lines are not JSON), split in up to
// three pieces. The parser's verdict must be Boost's on the unmasked line, and the fields it
// reads must be the decoded ones.
BOOST_AUTO_TEST_CASE(the_parser_decides_as_boost_json_on_the_unmasked_line) {
    std::mt19937 rng(20261130);
    auto pick = [&](std::size_t n) { return static_cast<std::size_t>(rng() % n); };
    const std::vector<std::string> escapes{R"(\n)", R"(\")", R"(\\)", R"(\/)", R"(\t)", R"(\u00e9)",
                                           R"(\ud83d\ude00)", R"(\q)", R"(\udc00)", R"(\ud800)", R"(\u12)", "\\"};
    auto text = [&] {
        std::string s;
        for (std::size_t i = 0, n = pick(6); i < n; ++i) {
            s += "ab c"[pick(4)];
            if (pick(3) == 0) s += escapes[pick(escapes.size())];
        }
        return s;
    };
    auto value = [&](int depth, auto& self) -> std::string {
        if (depth > 5 || pick(3) == 0) return pick(4) == 0 ? std::string("12") : "\"" + text() + "\"";
        if (pick(2) == 0) {
            std::string a = "[";
            for (std::size_t i = 0, n = pick(3); i < n; ++i) a += (i ? "," : "") + self(depth + 1, self);
            return a + "]";
        }
        std::string o = "{";
        for (std::size_t i = 0, n = pick(3); i < n; ++i)
            o += (i ? ",\"" : "\"") + text() + "\":" + self(depth + 1, self);
        return o + "}";
    };
    json::parse_options opt;
    opt.max_depth = 10000;
    opt.allow_invalid_utf8 = true;
    const bl::limits lim;
    bl::line_parser parser(lim);
    int valid = 0, invalid = 0;
    for (int round = 0; round < 20000; ++round) {
        std::string line = R"({"custom_id":")" + text() + R"(","method":"POST","url":"/v1/chat/completions",)" +
                           R"("body":{"model":")" + text() + R"(","messages":[{"role":"user","content":)" +
                           value(3, value) + "}],\"x\":" + value(2, value) + "}}";
        if (pick(2) == 0) damage(line, rng);
        std::vector<std::string> pieces;
        std::size_t a = pick(line.size() + 1), b = pick(line.size() + 1);
        if (a > b) std::swap(a, b);
        pieces = {line.substr(0, a), line.substr(a, b - a), line.substr(b)};

        parser.reset();
        bool ok = true;
        for (const auto& p : pieces) ok = parser.write(p) && ok;
        ok = parser.finish() && ok;
        json::error_code ec;
        json::value v = json::parse(line, ec, {}, opt);
        BOOST_TEST_REQUIRE(ok == !ec, line);
        (ok ? valid : invalid)++;
        if (!ok || parser.judge({})) continue;
        const json::object& o = v.as_object();
        BOOST_TEST(parser.custom_id() == std::string_view(o.at("custom_id").as_string()), line);
        BOOST_TEST(parser.url() == std::string_view(o.at("url").as_string()), line);
        BOOST_TEST(parser.model() == std::string_view(o.at("body").at("model").as_string()), line);
    }
    BOOST_TEST(valid > 2000);
    BOOST_TEST(invalid > 2000);
}

// apply() against reference_mask on generated lines long enough to cross several 64-byte blocks
// (runs of up to 200 plain bytes between escapes, so that escapes, quotes and brackets fall on
// every block edge), with bytes changed, dropped or added, in up to four pieces.
BOOST_AUTO_TEST_CASE(apply_returns_the_bytes_of_the_byte_at_a_time_rules) {
    std::mt19937 rng(20261201);
    auto pick = [&](std::size_t n) { return static_cast<std::size_t>(rng() % n); };
    const std::vector<std::string> escapes{R"(\n)", R"(\")", R"(\\)", R"(\u00e9)", R"(\ud83d\ude00)", R"(\q)",
                                           R"(\udc00)", R"(\ud800\u0041)", R"(\u12)", "\\", "{", "]", "\""};
    auto text = [&] {
        std::string s;
        for (std::size_t i = 0, n = pick(5); i < n; ++i) {
            s.append(pick(200), "ab c"[pick(4)]);
            s += escapes[pick(escapes.size())];
        }
        return s;
    };
    std::size_t masked_lines = 0;
    for (int round = 0; round < 20000; ++round) {
        std::string line = R"({"custom_id":")" + text() + R"(","body":{"model":")" + text() +
                           R"(","messages":[{"role":"user","content":")" + text() + R"("},[")" + text() +
                           R"("]],"x":{"y":")" + text() + "\"}}}";
        if (pick(2) == 0) damage(line, rng);
        std::vector<std::size_t> cuts{0, line.size()};
        for (std::size_t i = 0, n = pick(4); i < n; ++i) cuts.push_back(pick(line.size() + 1));
        std::sort(cuts.begin(), cuts.end());
        bl::escape_mask m;
        m.reset();
        reference_mask want;
        std::string whole;
        for (std::size_t i = 0; i + 1 < cuts.size(); ++i) {
            const std::string piece = line.substr(cuts[i], cuts[i + 1] - cuts[i]);
            const std::string got(m.apply(piece));
            BOOST_TEST_REQUIRE(got == want.apply(piece), line << " piece " << i);
            whole += got;
        }
        if (whole != line) ++masked_lines;
    }
    BOOST_TEST(masked_lines > 5000u);
}
