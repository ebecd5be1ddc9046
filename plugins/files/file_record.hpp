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
    boost::json::object to_json() const {
        boost::json::object o;
        o["id"] = id;
        o["object"] = "file";
        o["bytes"] = bytes;
        o["created_at"] = created_at;
        o["expires_at"] = expires_at;
        o["filename"] = filename;
        o["purpose"] = purpose;
        o["status"] = "processed";
        o["status_details"] = nullptr;
        return o;
    }
};

}  // namespace aq::files
