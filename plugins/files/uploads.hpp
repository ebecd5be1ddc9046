// The Uploads API (OpenAI's /v1/uploads; upload_routes.hpp has the HTTP side): a file of up to
// max_upload_bytes sent as parts of at most 64 MiB, in parallel and in any order, then completed
// into a normal file of the files plugin (store.hpp).
//
// Schema (migration 4 of "files"):
//   uploads(id, owner, filename, purpose, mime_type, bytes, created_at, expires_at, status,
//           file_lifetime, file_id, claim, claimed_until)
//   Parts are rows of `files` in state "part" (store.hpp): filename holds the Upload's id and
//   expires_at the Upload's. Their content is written like any file's (content_store.hpp's
//   protocol, with its leases), so a crash mid-part leaves nothing the purge cannot find, and
//   the purge job removes parts as it removes expired files: at the Upload's expiry, or at once
//   (expires_at 0) when the Upload is completed or cancelled.
//
// An Upload's stored status: pending, completing (a completion is running), completed,
// cancelled. A pending or completing Upload past expires_at is "expired" (computed, never
// stored); a client sees "completing" as "pending". A completion claims the Upload with a
// token (claim) and a lease (claimed_until, orphan_grace_seconds, renewed as it reads and
// joins): a completion whose process died loses its claim when the lease runs out, the Upload
// is pending again, and a late commit of the lost claim is refused (it checks its token). The purge deletes Upload rows a day after
// they expire (so a late call still learns "expired" rather than "not found").
//
// Completing reads the parts once, in part_ids order: SHA-256 for the file's row, MD5 when the
// client gave one, the batch validator for purpose "batch" (streaming, as a direct upload). Any
// refusal comes before anything is written. It then joins the parts into a new file with
// store::writer::append: the filesystem store copies in the kernel (copy_file_range), the
// database store copies chunks inside the database, S3 streams through a bounded buffer (the
// s3 client has no UploadPartCopy). One transaction then makes the file visible (checking the
// owner's quota), marks the Upload completed and ends the parts' lifetime. A completion that
// fails puts the Upload back to pending with its parts untouched; one that dies with its process
// leaves it "completing" (409) until it expires.
//
// Part ids on the wire are "part_" followed by the part row's id after "file-".
//
// Status codes. Neither OpenAI's reference nor openai-node names a status for an operation on an
// Upload that is no longer pending; this answers 400 invalid_request_error (what OpenAI answers
// for a request that does not fit an object's state, and the status the IETF resumable-upload
// draft recommends for a completed upload), and 409 only while another request is completing
// the Upload, which a retry may then find done.
// An unknown or another owner's Upload is 404; an unknown or another owner's part id in
// part_ids is 400 naming part_ids (it is a bad value in the body, not a missing resource).
#pragma once

#include "config.hpp"
#include "file_record.hpp"
#include "store.hpp"

#include <boost/json/object.hpp>

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace aq::files {

struct upload_record {
    std::string id, owner, filename, purpose, mime_type;
    std::string status;  // as stored: pending, completing, completed, cancelled
    std::string file_id;
    std::string claim;                 // the token of the completion that holds it, if any
    std::int64_t claimed_until = 0;    // that claim's lease
    std::uint64_t bytes = 0;
    std::int64_t created_at = 0, expires_at = 0;
    std::int64_t file_lifetime = 0;  // the file's expires_after[seconds]; 0: the default

    // What a client sees at `now`: pending, completed, cancelled or expired.
    std::string status_at(std::int64_t now) const;
    // A completion holds it at `now` (its claim's lease has not run out).
    bool claimed_at(std::int64_t now) const { return status == "completing" && claimed_until > now; }
    // OpenAI's Upload object; `file` is the completed file (null otherwise).
    boost::json::object to_json(std::int64_t now, const std::optional<file_record>& file) const;
};

class uploads {
public:
    static constexpr std::uint64_t max_part_bytes = 64ull << 20;

    uploads(store& files, const config& cfg) : files_(files), cfg_(cfg) {}

    // Records a new pending Upload from the caller's validated fields (owner, filename,
    // purpose, mime_type, bytes, file_lifetime); returns it with id, times and status.
    upload_record create(upload_record fields);
    // The owner's Upload; http_error 404 when there is none (another owner's included).
    upload_record get(std::string_view owner, std::string_view id);
    // http_error 400 (409 while completing) unless `u` is pending now; `doing` words it.
    static void require_pending(const upload_record& u, std::string_view doing);

    // Makes the written content of `part` a part of `u` ("part" row), in one transaction that
    // checks that `u` is still pending and that its parts do not exceed its bytes. Returns the
    // Part object.
    boost::json::object add_part(const upload_record& u, store::writer& part);

    // Completes `u` from `part_ids` (wire ids), checking `md5` (lowercase or uppercase hex) when
    // given. Returns the completed Upload object.
    boost::json::object complete(const upload_record& u, const std::vector<std::string>& part_ids,
                                 const std::optional<std::string>& md5);
    // Cancels the owner's pending Upload; returns the Upload object.
    boost::json::object cancel(std::string_view owner, std::string_view id);

    // Deletes up to `limit` Upload rows a day past their expiry. Returns how many.
    std::size_t purge(std::size_t limit);

private:
    // The rows of `part_ids` that are parts of `u`, in order; http_error 400 otherwise.
    std::vector<file_record> resolve_parts(const upload_record& u, const std::vector<std::string>& part_ids);
    // Reads the parts once: their SHA-256, after checking md5 and, for a batch, the content.
    // `alive` is called after each piece read (the caller renews its claim).
    std::string check_content(const upload_record& u, const std::vector<file_record>& parts,
                              const std::optional<std::string>& md5, const std::function<void()>& alive);
    // Moves `u` from pending (and not expired) to `to`, in the transaction that holds the lock
    // its parts' commits take; with `end_parts` the parts' lifetime ends there too. False when
    // it was not pending.
    // A completing Upload whose claim lapsed counts as pending. `claim`: the token recorded
    // (with a lease) when `to` is "completing".
    bool leave_pending(const upload_record& u, std::string_view to, bool end_parts, const std::string& claim = {});
    // Extends the claim's lease; http_error 409 when the claim was lost.
    void renew_claim(const upload_record& u, const std::string& claim);
    // Gives the Upload back (pending) if `claim` still holds it.
    void release_claim(const upload_record& u, const std::string& claim);

    store& files_;
    const config& cfg_;
};

}  // namespace aq::files
