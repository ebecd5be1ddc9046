#include "upload.hpp"

#include "multipart.hpp"

#include "batch_line/utf8.hpp"
#include "batch_line/validator.hpp"

#include <charconv>
#include <set>
#include <optional>

namespace aq::files {
namespace {

// Text fields the upload reads; others are ignored (API.md) without being buffered.
constexpr std::size_t max_field_bytes = 1024;
constexpr std::size_t read_buffer_bytes = 256 * 1024;

[[noreturn]] void bad_request(std::string message, std::string param = {}) {
    throw aq::http_error(400, std::move(message), std::move(param));
}

class upload_session {
public:
    upload_session(const config& cfg, store& files, std::string owner)
        : cfg_(cfg), files_(files), owner_(std::move(owner)) {}

    multipart::callbacks callbacks() {
        return {[this](const multipart::part& p) { begin(p); }, [this](std::string_view d) { data(d); },
                [this] { end(); }};
    }

    std::uint64_t respond(aq::request& req) {
        if (!file_seen_) bad_request("Missing required parameter: 'file'.", "file");
        if (!purpose_) bad_request("Missing required parameter: 'purpose'.", "purpose");
        std::int64_t lifetime = cfg_.default_expiry_seconds;
        if (anchor_ && *anchor_ != "created_at")
            bad_request("Invalid 'expires_after[anchor]': only 'created_at' is supported.", "expires_after[anchor]");
        if (seconds_) {
            std::int64_t s = 0;
            auto [end, ec] = std::from_chars(seconds_->data(), seconds_->data() + seconds_->size(), s);
            std::int64_t max = std::min(config::max_expires_after, cfg_.max_expiry_seconds);
            if (ec != std::errc() || end != seconds_->data() + seconds_->size() || s < config::min_expires_after ||
                s > max)
                bad_request("Invalid 'expires_after[seconds]': must be an integer between " +
                                std::to_string(config::min_expires_after) + " and " + std::to_string(max) + ".",
                            "expires_after[seconds]");
            lifetime = s;
        } else if (anchor_) {
            bad_request("Missing required parameter: 'expires_after[seconds]'.", "expires_after[seconds]");
        }
        if (writer_->bytes() == 0) bad_request("File is empty.", "file");
        if (*purpose_ == "batch") {
            if (!filename_.ends_with(".jsonl"))
                bad_request("Invalid file format for Batch API. Must be .jsonl", "file");
            if (batch_error_) bad_request(*batch_error_, "file");
        }
        file_record r;
        try {
            r = writer_->commit(filename_, *purpose_, lifetime, {cfg_.quota_bytes, cfg_.quota_files});
        } catch (const store::quota_exceeded& e) {
            throw aq::http_error(413, e.what(), "file", "quota_exceeded");
        }
        writer_.reset();
        req.respond_json(200, r.to_json());
        return r.bytes;
    }

private:
    enum class part_kind { none, file, field, ignored };

    void begin(const multipart::part& p) {
        // A known field sent twice is refused, never "last one wins": a second purpose after
        // the file would otherwise relabel content validated (or not) under the first.
        if (p.name == "file" || p.name == "purpose" || p.name == "expires_after[anchor]" ||
            p.name == "expires_after[seconds]") {
            if (!seen_.insert(p.name).second)
                bad_request("Duplicate parameter: '" + p.name + "' may be sent only once.", p.name);
        }
        if (p.name == "file") {
            file_seen_ = true;
            if (!p.filename) bad_request("The 'file' part has no filename.", "file");
            if (auto problem = filename_problem(*p.filename); !problem.empty()) bad_request(problem, "file");
            filename_ = *p.filename;
            writer_ = files_.create(owner_, cfg_.max_file_bytes);
            if (!purpose_ || *purpose_ == "batch") validator_.emplace(batch_validation(cfg_, files_));
            kind_ = part_kind::file;
        } else if (p.name == "purpose" || p.name == "expires_after[anchor]" || p.name == "expires_after[seconds]") {
            field_name_ = p.name;
            field_value_.clear();
            kind_ = part_kind::field;
        } else {
            kind_ = part_kind::ignored;
        }
    }

    void data(std::string_view d) {
        if (kind_ == part_kind::file) {
            if (writer_->bytes() + d.size() > cfg_.max_file_bytes)
                bad_request(too_large_message(cfg_), "file");
            writer_->write(d);
            if (validator_) validator_->push(d);
            check_batch();
        } else if (kind_ == part_kind::field) {
            if (field_value_.size() + d.size() > max_field_bytes)
                bad_request("Parameter '" + field_name_ + "' is too long.", field_name_);
            field_value_.append(d);
        }
    }

    void end() {
        if (kind_ == part_kind::file) {
            // Before the batch verdict ("contains no requests"): the clearer message.
            if (writer_->bytes() == 0) bad_request("File is empty.", "file");
            if (validator_) validator_->finish();
            check_batch();
            validator_.reset();
        } else if (kind_ == part_kind::field) {
            if (field_name_ == "purpose") {
                if (auto problem = purpose_problem(cfg_, field_value_); !problem.empty()) bad_request(problem, "purpose");
                purpose_ = field_value_;
                // The file came first and was validated as batch content on speculation.
                if (*purpose_ != "batch") batch_error_.reset();
            } else if (field_name_ == "expires_after[anchor]") {
                anchor_ = field_value_;
            } else {
                seconds_ = field_value_;
            }
        }
        kind_ = part_kind::none;
    }

    // With purpose "batch" known, the validator's first problem answers at once; while the
    // purpose is unknown it is remembered (and validation stops, bounding its work).
    void check_batch() {
        if (!validator_ || !validator_->failed()) return;
        std::string message = batch_line::describe(validator_->problems().front());
        if (purpose_) bad_request(std::move(message), "file");
        batch_error_ = std::move(message);
        validator_.reset();
    }

    const config& cfg_;
    store& files_;
    std::string owner_;

    part_kind kind_ = part_kind::none;
    std::set<std::string> seen_;  // the known fields begun so far
    std::string field_name_, field_value_;
    std::optional<std::string> purpose_, anchor_, seconds_;

    bool file_seen_ = false;
    std::string filename_;
    std::unique_ptr<store::writer> writer_;
    std::optional<batch_line::validator> validator_;
    std::optional<std::string> batch_error_;
};

}  // namespace

std::string purpose_problem(const config& cfg, const std::string& purpose) {
    if (purpose.empty()) return "Missing required parameter: 'purpose'.";
    if (purpose == "batch_output" || !cfg.purposes.contains(purpose)) {
        std::string accepted;
        for (const auto& p : cfg.purposes) accepted += (accepted.empty() ? "'" : ", '") + p + "'";
        return "Invalid value for 'purpose': '" + purpose + "'. Supported values are: " + accepted + ".";
    }
    return {};
}

batch_line::options batch_validation(const config& cfg, const store& files) {
    batch_line::options o;
    o.limit.max_line_bytes = cfg.max_line_bytes;
    o.limit.max_requests = cfg.max_requests_per_file;
    o.scratch_dir = files.scratch_folder();
    return o;
}

std::string too_large_message(const config& cfg) {
    return "File is too large: the limit is " + std::to_string(cfg.max_file_bytes) + " bytes.";
}

std::string filename_problem(std::string_view filename) {
    if (filename.empty()) return "The filename must not be empty.";
    if (filename.size() > 255) return "The filename is too long: at most 255 bytes.";
    if (!batch_line::is_valid_utf8(filename)) return "The filename is not valid UTF-8.";
    for (char ch : filename) {
        auto c = static_cast<unsigned char>(ch);
        if (c == '/' || c == '\\') return "The filename must not contain path separators.";
        if (c == '"') return "The filename must not contain quotes.";
        if (c < 0x20 || c == 0x7F) return "The filename must not contain control characters.";
    }
    if (filename == "." || filename == "..") return "The filename is invalid.";
    return {};
}

std::uint64_t upload(aq::request& req, const config& cfg, store& files) {
    auto content_type = req.header("Content-Type");
    std::optional<std::string> boundary = content_type ? multipart::boundary_of(*content_type) : std::nullopt;
    if (!boundary)
        throw aq::http_error(415, "The request body must be multipart/form-data with a boundary.", "",
                             "unsupported_media_type");

    upload_session session(cfg, files, std::string(req.owner()));
    multipart parser(*boundary, session.callbacks());
    std::string buffer(read_buffer_bytes, '\0');
    try {
        while (std::size_t n = req.read(buffer)) parser.push(std::string_view(buffer.data(), n));
        parser.finish();
    } catch (const multipart::error& e) {
        bad_request(e.what());
    }
    return session.respond(req);
}

}  // namespace aq::files
