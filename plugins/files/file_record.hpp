// One stored file's metadata, and its wire form (API.md's FileObject).
#pragma once

#include <boost/json/object.hpp>

#include <cstdint>
#include <string>

namespace aq::files {

struct file_record {
    std::string id;
    std::string owner;
    std::string filename;
    std::string purpose;
    std::string sha256;          // lowercase hex
    std::uint64_t bytes = 0;
    std::int64_t created_at = 0; // Unix seconds
    std::int64_t expires_at = 0;
    std::uint32_t chunk_bytes = 0; // size of every content chunk but the last (database store)
    std::string store;             // the content store holding the bytes (content_store.hpp)
    std::string content_key;       // the content's key in that store

    // {"id", "object": "file", "bytes", "created_at", "expires_at", "filename", "purpose",
    //  "status": "processed", "status_details": null}
    // Built in one go (the object's table sized once): key by key it rehashed as it grew, a
    // few percent of a metadata GET's CPU.
    boost::json::object to_json() const {
        return boost::json::object{{"id", id},
                                   {"object", "file"},
                                   {"bytes", bytes},
                                   {"created_at", created_at},
                                   {"expires_at", expires_at},
                                   {"filename", filename},
                                   {"purpose", purpose},
                                   {"status", "processed"},
                                   {"status_details", nullptr}};
    }
};

}  // namespace aq::files
