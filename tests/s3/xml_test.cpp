// The XML subset S3 answers in: what it reads, and what it refuses.
#include <boost/test/unit_test.hpp>

#include "s3/xml.hpp"

#include <stdexcept>

using namespace aq::s3;

BOOST_AUTO_TEST_SUITE(xml)

BOOST_AUTO_TEST_CASE(reads_an_s3_listing_with_namespace_declaration_and_entities) {
    auto doc = parse_xml(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
        "<ListBucketResult xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">"
        "<Name>b</Name><IsTruncated>false</IsTruncated>"
        "<Contents><Key> a &amp; b &lt;c&gt; &#252;&#x1F600; </Key><ETag>&quot;abc&quot;</ETag><Size>5</Size></Contents>"
        "<Contents><Key>two</Key><Size>0</Size></Contents>"
        "<Empty/><Data><![CDATA[<not markup>]]></Data><!-- note -->"
        "</ListBucketResult>\n");
    BOOST_TEST(doc.name == "ListBucketResult");
    BOOST_TEST(doc.child_text("Name") == "b");
    BOOST_TEST(doc.children.size() == 6u);
    const xml_element& first = doc.children[2];
    BOOST_TEST(first.child_text("Key") == " a & b <c> \xC3\xBC\xF0\x9F\x98\x80 ");  // spaces kept
    BOOST_TEST(first.child_text("ETag") == "\"abc\"");
    BOOST_TEST(doc.children[3].child_text("Key") == "two");
    BOOST_TEST(doc.child("Empty") != nullptr);
    BOOST_TEST(doc.child("Empty")->text == "");
    BOOST_TEST(doc.child_text("Data") == "<not markup>");
    BOOST_TEST(doc.child("Missing") == nullptr);
    BOOST_TEST(doc.child_text("Missing") == "");
}

BOOST_AUTO_TEST_CASE(reads_a_document_after_keepalive_whitespace) {
    // S3 and s3api send whitespace while a CompleteMultipartUpload runs, then the result.
    auto doc = parse_xml("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n      \n"
                         "<Error><Code>InternalError</Code><Message>try again</Message></Error>");
    BOOST_TEST(doc.name == "Error");
    BOOST_TEST(doc.child_text("Code") == "InternalError");
}

BOOST_AUTO_TEST_CASE(refuses_what_is_not_well_formed_or_could_expand) {
    const char* bad[] = {
        "",
        "plain text",
        "<a>",
        "<a></b>",
        "<a><b></a></b>",
        "<a>&unknown;</a>",
        "<a>&#0;</a>",
        "<a>&#xD800;</a>",
        "<a>&#x110000;</a>",
        "<a>&amp</a>",
        "<a x=1></a>",
        "<a></a><b></b>",
        "<!DOCTYPE a [<!ENTITY x \"xx\">]><a>&x;</a>",
        "<a><!DOCTYPE b></a>",
        "<a><!-- never closed</a>",
        "<a><![CDATA[never closed</a>",
    };
    for (const char* doc : bad) BOOST_CHECK_THROW(parse_xml(doc), std::runtime_error);
}

BOOST_AUTO_TEST_CASE(refuses_nesting_deeper_than_64) {
    std::string deep;
    for (int i = 0; i < 65; ++i) deep += "<a>";
    for (int i = 0; i < 65; ++i) deep += "</a>";
    BOOST_CHECK_THROW(parse_xml(deep), std::runtime_error);
    std::string ok;
    for (int i = 0; i < 64; ++i) ok += "<a>";
    for (int i = 0; i < 64; ++i) ok += "</a>";
    BOOST_TEST(parse_xml(ok).name == "a");
}

BOOST_AUTO_TEST_CASE(escape_round_trips_through_the_parser) {
    std::string text = "\"etag\" & <key> 'x'";
    BOOST_TEST(xml_escape(text) == "&quot;etag&quot; &amp; &lt;key&gt; &apos;x&apos;");
    BOOST_TEST(parse_xml("<e>" + xml_escape(text) + "</e>").text == text);
}

BOOST_AUTO_TEST_SUITE_END()
