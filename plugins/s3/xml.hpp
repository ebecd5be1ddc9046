// The small XML subset S3 speaks: response documents (errors, listings, multipart results) are
// read into a tree of elements, and the one request document (CompleteMultipartUpload) is
// written with xml_escape.
//
// Elements, attributes (read and ignored: S3 puts only xmlns there), character data with the five
// predefined entities and numeric character references, CDATA, comments and the XML declaration.
// A DOCTYPE is refused, so no entity is ever defined or expanded (no XXE, no "billion laughs").
// Nesting deeper than 64 is refused. Text is kept exactly, whitespace included: object keys may
// begin or end with spaces.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace aq::s3 {

struct xml_element {
    std::string name;                   // as written, prefix included ("Error", "Contents")
    std::string text;                   // the element's own character data, entities decoded
    std::vector<xml_element> children;

    // The first child with this name, or nullptr.
    const xml_element* child(std::string_view name) const;
    // The text of the first child with this name, or "" when absent.
    std::string child_text(std::string_view name) const;
};

// Parses one document; throws std::runtime_error with the byte offset when it is not well-formed.
xml_element parse_xml(std::string_view document);

// Escapes & < > " ' for character data and attribute values.
std::string xml_escape(std::string_view text);

}  // namespace aq::s3
