// utf8_validator (plugins/batch_line/utf8.hpp): both methods against a reference written here
// from RFC 3629's table of well-formed byte sequences, on every 1- and 2-byte sequence, on 3- and
// 4-byte sequences built from every lead byte and the continuation bytes at each range's edges,
// each placed at every offset around a 16-byte block edge and fed whole, byte by byte and in
// random pieces; and on random text with random corruptions.
#include <boost/test/unit_test.hpp>

#include "batch_line/utf8.hpp"

#include <random>
#include <string>
#include <vector>

namespace bl = aq::batch_line;
using method = bl::utf8_validator::method;

namespace {

// RFC 3629, section 4: the well-formed sequences, one character at a time.
bool reference(const std::string& s) {
    const auto* p = reinterpret_cast<const unsigned char*>(s.data());
    const auto* end = p + s.size();
    auto in = [](unsigned char c, unsigned lo, unsigned hi) { return c >= lo && c <= hi; };
    while (p < end) {
        const unsigned char c = *p;
        std::size_t n = 0;
        unsigned lo2 = 0x80, hi2 = 0xBF;
        if (c <= 0x7F) n = 1;
        else if (in(c, 0xC2, 0xDF)) n = 2;
        else if (c == 0xE0) n = 3, lo2 = 0xA0;
        else if (in(c, 0xE1, 0xEC) || in(c, 0xEE, 0xEF)) n = 3;
        else if (c == 0xED) n = 3, hi2 = 0x9F;
        else if (c == 0xF0) n = 4, lo2 = 0x90;
        else if (in(c, 0xF1, 0xF3)) n = 4;
        else if (c == 0xF4) n = 4, hi2 = 0x8F;
        else return false;
        if (static_cast<std::size_t>(end - p) < n) return false;
        if (n >= 2 && !in(p[1], lo2, hi2)) return false;
        for (std::size_t i = 2; i < n; ++i)
            if (!in(p[i], 0x80, 0xBF)) return false;
        p += n;
    }
    return true;
}

std::vector<method> methods() {
    std::vector<method> out{method::bytewise};
    if (bl::utf8_validator::available(method::simd)) out.push_back(method::simd);
    return out;
}

bool verdict(method m, const std::string& s, const std::vector<std::size_t>& cuts) {
    bl::utf8_validator v(m);
    std::size_t at = 0;
    for (std::size_t c : cuts) {
        v.feed(std::string_view(s).substr(at, c - at));
        at = c;
    }
    v.feed(std::string_view(s).substr(at));
    return v.complete();
}

std::mt19937 rng(20261130);
const std::vector<std::size_t> none;

std::string hex(const std::string& s) {
    static constexpr char digits[] = "0123456789abcdef";
    std::string out;
    for (unsigned char c : s.substr(0, 96)) out += std::string{digits[c >> 4], digits[c & 15], ' '};
    return s.size() > 96 ? out + "... (" + std::to_string(s.size()) + " bytes)" : out;
}

// Fed whole, one byte at a time, and cut at two random places: the same verdict as the
// reference's, by every method.
void check(const std::string& s) {
    const bool want = reference(s);
    std::vector<std::size_t> bytes;
    for (std::size_t i = 1; i < s.size(); ++i) bytes.push_back(i);
    std::vector<std::size_t> two;
    if (!s.empty()) {
        std::uniform_int_distribution<std::size_t> d(0, s.size());
        two = {d(rng), d(rng)};
        if (two[0] > two[1]) std::swap(two[0], two[1]);
    }
    // BOOST_FAIL, not BOOST_TEST: millions of checks pass, and a passing BOOST_TEST costs.
    for (method m : methods())
        for (const std::vector<std::size_t>* cuts : std::initializer_list<const std::vector<std::size_t>*>{&none, &bytes, &two})
            if (verdict(m, s, *cuts) != want)
                BOOST_FAIL("method " << static_cast<int>(m) << ", " << cuts->size() << " cuts: expected "
                                     << want << " for " << hex(s));
}

// `seq` placed after `pad` ASCII bytes (around the edges of 16- and 32-byte blocks) and before
// `tail` more.
std::string placed(const std::string& seq, std::size_t pad, std::size_t tail) {
    return std::string(pad, 'a') + seq + std::string(tail, 'z');
}

const std::vector<unsigned char> edges{0x00, 0x41, 0x7F, 0x80, 0x8F, 0x90, 0x9F, 0xA0, 0xBF, 0xC0, 0xF5, 0xFF};

}  // namespace

BOOST_AUTO_TEST_SUITE(utf8)

BOOST_AUTO_TEST_CASE(every_one_and_two_byte_sequence_at_a_block_edge) {
    // A CPU without AVX2 has the bytewise method only; the log says which ran.
    BOOST_TEST_MESSAGE("simd method: " << (bl::utf8_validator::available(method::simd) ? "tested" : "not on this CPU"));
    for (unsigned a = 0; a < 256; ++a)
        for (unsigned b = 0; b < 256; ++b) {
            const std::string seq{static_cast<char>(a), static_cast<char>(b)};
            for (std::size_t pad : {0u, 14u, 15u, 30u, 31u}) check(placed(seq, pad, 70));
        }
}

BOOST_AUTO_TEST_CASE(three_and_four_byte_sequences_from_every_lead_at_every_offset) {
    for (unsigned lead = 0x80; lead < 256; ++lead)
        for (unsigned char c1 : edges)
            for (unsigned char c2 : edges) {
                const std::string three{static_cast<char>(lead), static_cast<char>(c1), static_cast<char>(c2)};
                for (std::size_t pad : {0u, 13u, 14u, 15u, 16u, 29u, 30u, 31u}) {
                    check(placed(three, pad, 0));
                    check(placed(three, pad, 80));  // 64 ASCII bytes at once after it
                }
                if (lead < 0xF0) continue;
                for (unsigned char c3 : edges) {
                    const std::string four = three + static_cast<char>(c3);
                    for (std::size_t pad : {0u, 13u, 14u, 15u, 28u, 29u, 30u, 31u}) {
                        check(placed(four, pad, 0));
                        check(placed(four, pad, 80));
                    }
                }
            }
}

BOOST_AUTO_TEST_CASE(random_text_and_random_corruptions) {
    const std::vector<std::string> chars{"a", " ", "\n", "\xc3\xa9", "\xd0\x96", "\xe2\x82\xac", "\xe4\xb8\xad",
                                         "\xef\xbf\xbd", "\xf0\x9f\x98\x80", "\xf4\x8f\xbf\xbf"};
    std::uniform_int_distribution<std::size_t> pick(0, chars.size() - 1), length(0, 300);
    std::uniform_int_distribution<int> byte(0, 255);
    for (int round = 0; round < 4000; ++round) {
        std::string s;
        const std::size_t n = length(rng);
        for (std::size_t i = 0; i < n; ++i) s += chars[pick(rng)];
        check(s);
        if (s.empty()) continue;
        std::uniform_int_distribution<std::size_t> where(0, s.size() - 1);
        s[where(rng)] = static_cast<char>(byte(rng));
        check(s);
        s.resize(where(rng));  // maybe cut inside a character
        check(s);
    }
}

BOOST_AUTO_TEST_CASE(a_long_valid_text_with_an_error_far_into_it) {
    std::string s;
    while (s.size() < 100000) s += "Qualit\xc3\xa4t \xe2\x82\xac \xf0\x9f\x98\x80 plain ascii text for a while. ";
    check(s);
    std::string bad = s;
    bad[77777] = '\x80';  // a continuation where a character starts (or a broken one)
    check(bad);
    std::string surrogate = s + "\xed\xa0\x80";  // U+D800
    check(surrogate);
    std::string open = s + "\xf0\x9f\x98";  // ends inside a character
    check(open);
}

BOOST_AUTO_TEST_SUITE_END()
