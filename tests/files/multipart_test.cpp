// The incremental multipart parser, fed adversarially: every split point, byte by byte, and the
// malformed bodies a client (or an attacker) can send.
#define BOOST_TEST_MODULE files_multipart
#include <boost/test/unit_test.hpp>

#include "multipart.hpp"

#include <string>
#include <vector>

using aq::files::multipart;

namespace {

struct recorded {
    std::string name;
    std::optional<std::string> filename;
    std::string content_type;
    std::string data;
    bool ended = false;
};

struct recorder {
    std::vector<recorded> parts;

    multipart::callbacks callbacks() {
        return {
            [this](const multipart::part& p) { parts.push_back({p.name, p.filename, p.content_type, {}, false}); },
            [this](std::string_view d) {
                BOOST_REQUIRE(!parts.empty());
                BOOST_REQUIRE(!parts.back().ended);
                parts.back().data.append(d);
            },
            [this]() { parts.back().ended = true; },
        };
    }
};

const std::string boundary = "----aqBoundary7MA4YWxkTrZu0gW";

// A body with a preamble, a text field, a file whose content contains near-miss delimiters,
// an empty field and an epilogue.
std::string sample_body() {
    std::string b;
    b += "preamble to ignore\r\n";
    b += "--" + boundary + "\r\n";
    b += "Content-Disposition: form-data; name=\"purpose\"\r\n\r\n";
    b += "batch";
    b += "\r\n--" + boundary + "\r\n";
    b += "Content-Disposition: form-data; name=\"file\"; filename=\"in put.jsonl\"\r\n";
    b += "Content-Type: application/jsonl\r\n\r\n";
    b += "line1\r\n--" + boundary.substr(0, 10) + "x\r\n\r\r\n-\r\n--\r\n--" + boundary.substr(0, boundary.size() - 1) + "X" + std::string("\0\xff", 2) + "end";
    b += "\r\n--" + boundary + "\r\n";
    b += "Content-Disposition: form-data; name=\"empty\"\r\n\r\n";
    b += "\r\n--" + boundary + "--\r\nepilogue to ignore";
    return b;
}

void check_sample(const recorder& r) {
    BOOST_REQUIRE_EQUAL(r.parts.size(), 3u);
    BOOST_TEST(r.parts[0].name == "purpose");
    BOOST_TEST(!r.parts[0].filename.has_value());
    BOOST_TEST(r.parts[0].data == "batch");
    BOOST_TEST(r.parts[1].name == "file");
    BOOST_TEST(r.parts[1].filename.value_or("") == "in put.jsonl");
    BOOST_TEST(r.parts[1].content_type == "application/jsonl");
    BOOST_TEST(r.parts[1].data == "line1\r\n--" + boundary.substr(0, 10) + "x\r\n\r\r\n-\r\n--\r\n--" + boundary.substr(0, boundary.size() - 1) + "X" +
                                      std::string("\0\xff", 2) + "end");
    BOOST_TEST(r.parts[2].name == "empty");
    BOOST_TEST(r.parts[2].data.empty());
    for (const auto& p : r.parts) BOOST_TEST(p.ended);
}

recorder parse_whole(const std::string& body, std::size_t max_header = 16 * 1024) {
    recorder r;
    multipart m(boundary, r.callbacks(), max_header);
    m.push(body);
    m.finish();
    return r;
}

std::string one_file(const std::string& disposition, const std::string& content = "x") {
    return "--" + boundary + "\r\nContent-Disposition: " + disposition + "\r\n\r\n" + content + "\r\n--" + boundary +
           "--\r\n";
}

}  // namespace

BOOST_AUTO_TEST_CASE(parses_whole_body) {
    recorder r = parse_whole(sample_body());
    check_sample(r);
}

BOOST_AUTO_TEST_CASE(parses_body_split_at_every_point) {
    const std::string body = sample_body();
    for (std::size_t i = 0; i <= body.size(); ++i) {
        recorder r;
        multipart m(boundary, r.callbacks());
        m.push(std::string_view(body).substr(0, i));
        m.push(std::string_view(body).substr(i));
        m.finish();
        BOOST_TEST_CONTEXT("split at " << i) check_sample(r);
    }
}

BOOST_AUTO_TEST_CASE(parses_body_split_at_every_pair_of_points) {
    const std::string body = sample_body();
    const std::string expected = parse_whole(body).parts[1].data;
    for (std::size_t i = 0; i <= body.size(); i += 3) {
        for (std::size_t j = i; j <= body.size(); ++j) {
            recorder r;
            multipart m(boundary, r.callbacks());
            std::string_view b(body);
            m.push(b.substr(0, i));
            m.push(b.substr(i, j - i));
            m.push(b.substr(j));
            m.finish();
            BOOST_REQUIRE_EQUAL(r.parts.size(), 3u);
            BOOST_REQUIRE(r.parts[1].data == expected);
            BOOST_REQUIRE(r.parts[2].ended);
        }
    }
}

BOOST_AUTO_TEST_CASE(parses_body_byte_by_byte) {
    const std::string body = sample_body();
    recorder r;
    multipart m(boundary, r.callbacks());
    for (char c : body) m.push(std::string_view(&c, 1));
    BOOST_TEST(m.done());
    m.finish();
    check_sample(r);
}

BOOST_AUTO_TEST_CASE(body_without_preamble_and_lf_only_epilogue) {
    recorder r = parse_whole(one_file("form-data; name=\"file\"; filename=\"a.jsonl\"", "{}"));
    BOOST_REQUIRE_EQUAL(r.parts.size(), 1u);
    BOOST_TEST(r.parts[0].data == "{}");
}

BOOST_AUTO_TEST_CASE(quoted_filename_with_escapes) {
    recorder r = parse_whole(one_file(R"(form-data; name="file"; filename="a \"quoted\" \\ name.jsonl")"));
    BOOST_TEST(r.parts[0].filename.value() == R"(a "quoted" \ name.jsonl)");
}

BOOST_AUTO_TEST_CASE(semicolon_inside_quoted_filename) {
    recorder r = parse_whole(one_file(R"(form-data; filename="a;b=c.jsonl"; name="file")"));
    BOOST_TEST(r.parts[0].name == "file");
    BOOST_TEST(r.parts[0].filename.value() == "a;b=c.jsonl");
}

BOOST_AUTO_TEST_CASE(raw_utf8_filename_is_kept) {
    recorder r = parse_whole(one_file("form-data; name=\"file\"; filename=\"na\xc3\xafve \xe6\x97\xa5.jsonl\""));
    BOOST_TEST(r.parts[0].filename.value() == "na\xc3\xafve \xe6\x97\xa5.jsonl");
}

BOOST_AUTO_TEST_CASE(rfc5987_filename_star_wins) {
    recorder r = parse_whole(
        one_file("form-data; name=\"file\"; filename=\"fallback.jsonl\"; filename*=UTF-8''na%C3%AFve%20x.jsonl"));
    BOOST_TEST(r.parts[0].filename.value() == "na\xc3\xafve x.jsonl");
}

BOOST_AUTO_TEST_CASE(filename_star_in_unknown_charset_falls_back) {
    recorder r = parse_whole(
        one_file("form-data; name=\"file\"; filename=\"fallback.jsonl\"; filename*=koi8-r''%C1.jsonl"));
    BOOST_TEST(r.parts[0].filename.value() == "fallback.jsonl");
}

BOOST_AUTO_TEST_CASE(unquoted_token_parameters_and_case) {
    recorder r = parse_whole("--" + boundary + "\r\ncontent-DISPOSITION:form-data;NAME=file;filename=x.jsonl\r\n\r\nabc\r\n--" +
                             boundary + "--");
    BOOST_TEST(r.parts[0].name == "file");
    BOOST_TEST(r.parts[0].filename.value() == "x.jsonl");
    BOOST_TEST(r.parts[0].data == "abc");
}

BOOST_AUTO_TEST_CASE(transport_padding_after_boundary) {
    recorder r = parse_whole("--" + boundary + "  \t\r\nContent-Disposition: form-data; name=a\r\n\r\nv\r\n--" + boundary +
                             "--");
    BOOST_TEST(r.parts[0].data == "v");
}

BOOST_AUTO_TEST_CASE(missing_closing_boundary_is_an_error) {
    recorder r;
    multipart m(boundary, r.callbacks());
    m.push("--" + boundary + "\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a\"\r\n\r\ncontent\r\n");
    BOOST_CHECK_THROW(m.finish(), multipart::error);
    BOOST_TEST(!m.done());
}

BOOST_AUTO_TEST_CASE(truncated_inside_headers_is_an_error) {
    recorder r;
    multipart m(boundary, r.callbacks());
    m.push("--" + boundary + "\r\nContent-Disposition: form-da");
    BOOST_CHECK_THROW(m.finish(), multipart::error);
    BOOST_TEST(r.parts.empty());
}

BOOST_AUTO_TEST_CASE(truncated_inside_closing_boundary_is_an_error) {
    std::string body = one_file("form-data; name=\"a\"");
    body.resize(body.size() - 4);  // "...--boundary" without the final "--\r\n"
    recorder r;
    multipart m(boundary, r.callbacks());
    m.push(body);
    BOOST_CHECK_THROW(m.finish(), multipart::error);
}

BOOST_AUTO_TEST_CASE(empty_body_is_an_error) {
    recorder r;
    multipart m(boundary, r.callbacks());
    BOOST_CHECK_THROW(m.finish(), multipart::error);
}

BOOST_AUTO_TEST_CASE(huge_part_headers_are_refused_while_streaming) {
    recorder r;
    multipart m(boundary, r.callbacks(), 1024);
    m.push("--" + boundary + "\r\nContent-Disposition: form-data; name=\"file\"\r\nX-Junk: ");
    std::string junk(300, 'j');
    BOOST_CHECK_THROW(
        {
            for (int i = 0; i < 10; ++i) m.push(junk);
        },
        multipart::error);
}

BOOST_AUTO_TEST_CASE(huge_part_headers_in_one_chunk_are_refused) {
    std::string body = one_file("form-data; name=\"file\"; filename=\"" + std::string(5000, 'a') + "\"");
    BOOST_CHECK_THROW(parse_whole(body, 1024), multipart::error);
}

BOOST_AUTO_TEST_CASE(part_without_content_disposition_is_an_error) {
    BOOST_CHECK_THROW(parse_whole("--" + boundary + "\r\nContent-Type: text/plain\r\n\r\nx\r\n--" + boundary + "--"),
                      multipart::error);
}

BOOST_AUTO_TEST_CASE(unterminated_quoted_parameter_is_an_error) {
    BOOST_CHECK_THROW(parse_whole(one_file("form-data; name=\"file")), multipart::error);
}

BOOST_AUTO_TEST_CASE(garbage_after_boundary_is_an_error) {
    BOOST_CHECK_THROW(parse_whole("--" + boundary + "junk\r\n\r\n"), multipart::error);
}

BOOST_AUTO_TEST_CASE(memory_stays_bounded_for_a_large_part) {
    // 64 MiB of data in 64 KiB pushes: the recorder only counts, the parser must not buffer.
    std::size_t seen = 0;
    multipart m(boundary, {[](const multipart::part&) {}, [&](std::string_view d) { seen += d.size(); }, [] {}});
    m.push("--" + boundary + "\r\nContent-Disposition: form-data; name=\"file\"; filename=\"big\"\r\n\r\n");
    std::string block(64 * 1024, '\r');  // CRs: the worst case for the delimiter search
    for (int i = 0; i < 1024; ++i) m.push(block);
    m.push("\r\n--" + boundary + "--\r\n");
    m.finish();
    BOOST_TEST(seen == 64u * 1024 * 1024);
}

BOOST_AUTO_TEST_CASE(boundary_of_content_type) {
    BOOST_TEST(multipart::boundary_of("multipart/form-data; boundary=abc").value_or("") == "abc");
    BOOST_TEST(multipart::boundary_of("Multipart/Form-Data;boundary=\"a b:c\"").value_or("") == "a b:c");
    BOOST_TEST(multipart::boundary_of("multipart/form-data; charset=utf-8; boundary=----x").value_or("") == "----x");
    BOOST_TEST(!multipart::boundary_of("multipart/form-data").has_value());
    BOOST_TEST(!multipart::boundary_of("multipart/form-data; boundary=").has_value());
    BOOST_TEST(!multipart::boundary_of("application/json").has_value());
    BOOST_TEST(!multipart::boundary_of("multipart/mixed; boundary=abc").has_value());
}

// Found by tests/fuzz (fuzz_multipart): part headers that end exactly at the limit were refused
// when the body was split inside the blank line that ends them, and accepted when it was not.
BOOST_AUTO_TEST_CASE(headers_ending_at_the_limit_are_accepted_at_every_split_point) {
    std::string headers = "Content-Disposition: form-data; name=\"a\"\r\nX-Pad: ";
    headers.resize(64, 'y');
    const std::string body = "--" + boundary + "\r\n" + headers + "\r\n\r\nv\r\n--" + boundary + "--";
    for (std::size_t i = 0; i <= body.size(); ++i) {
        recorder r;
        multipart m(boundary, r.callbacks(), headers.size());
        BOOST_TEST_CONTEXT("split at " << i) {
            BOOST_CHECK_NO_THROW({
                m.push(std::string_view(body).substr(0, i));
                m.push(std::string_view(body).substr(i));
                m.finish();
            });
            BOOST_REQUIRE_EQUAL(r.parts.size(), 1u);
            BOOST_TEST(r.parts[0].data == "v");
        }
    }
    // One byte more is over the limit, however it is split.
    for (std::size_t i = 0; i <= body.size(); ++i) {
        recorder r;
        multipart m(boundary, r.callbacks(), headers.size() - 1);
        BOOST_CHECK_THROW(
            {
                m.push(std::string_view(body).substr(0, i));
                m.push(std::string_view(body).substr(i));
                m.finish();
            },
            multipart::error);
    }
}
