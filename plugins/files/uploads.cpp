#include "uploads.hpp"

#include "sha256.hpp"
#include "test_pause.hpp"
#include "upload.hpp"

#include "batch_line/validator.hpp"
#include "sql/transaction.hpp"

#include <aqueduct/plugin.hpp>

#include <soci/soci.h>

#include <algorithm>
#include <cctype>
#include <set>

namespace aq::files {
namespace {

// How long an expired Upload's row stays, answering "expired" instead of 404.
constexpr std::int64_t retention_seconds = 24 * 3600;
// The lock space of one Upload's parts ("aqup"): a part's commit and a cancel are serialized,
// so that the sum of the parts is checked against everything committed before.
constexpr std::int32_t upload_lock_space = 1634825584;
constexpr std::size_t read_buffer_bytes = 256 * 1024;

[[noreturn]] void bad(std::string message, std::string param = {}) {
    throw aq::http_error(400, std::move(message), std::move(param));
}

std::string wire_part_id(const std::string& row_id) { return "part_" + row_id.substr(5); }

// The row id of a wire part id, nullopt when it cannot be one.
std::optional<std::string> part_row_of(std::string_view wire) {
    if (!wire.starts_with("part_") || wire.size() <= 5 || wire.size() > 128) return std::nullopt;
    return "file-" + std::string(wire.substr(5));
}

long long affected(soci::statement& st) { return std::max<long long>(0, st.get_affected_rows()); }

std::string lower(std::string s) {
    for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return s;
}

}  // namespace

std::string upload_record::status_at(std::int64_t now) const {
    if (status == "completed" || status == "cancelled") return status;
    return expires_at <= now ? "expired" : "pending";
}

boost::json::object upload_record::to_json(std::int64_t now, const std::optional<file_record>& file) const {
    boost::json::object o;
    o["id"] = id;
    o["object"] = "upload";
    o["bytes"] = bytes;
    o["created_at"] = created_at;
    o["expires_at"] = expires_at;
    o["filename"] = filename;
    o["purpose"] = purpose;
    o["status"] = status_at(now);
    o["file"] = file ? boost::json::value(file->to_json()) : boost::json::value(nullptr);
    return o;
}

upload_record uploads::create(upload_record u) {
    u.id = aq::random_id("upload_");
    u.created_at = unix_now();
    u.expires_at = u.created_at + cfg_.upload_expiry_seconds;
    u.status = "pending";
    long long b = static_cast<long long>(u.bytes), c = u.created_at, e = u.expires_at, l = u.file_lifetime;
    files_.pool_.run([&](soci::session& s) {
        sql::write_transaction tx(s, files_.kind());
        s << "insert into uploads (id, owner, filename, purpose, mime_type, bytes, created_at, expires_at, status,"
             " file_lifetime, file_id) values (:i, :o, :f, :p, :m, :b, :c, :e, 'pending', :l, '')",
            soci::use(u.id), soci::use(u.owner), soci::use(u.filename), soci::use(u.purpose), soci::use(u.mime_type),
            soci::use(b), soci::use(c), soci::use(e), soci::use(l);
        tx.commit();
    });
    return u;
}

upload_record uploads::get(std::string_view owner, std::string_view id) {
    upload_record u;
    bool found = files_.pool_.run([&](soci::session& s) {
        std::string o(owner), i(id);
        long long b = 0, c = 0, e = 0, l = 0, cu = 0;
        s << "select id, owner, filename, purpose, mime_type, status, file_id, claim, bytes, created_at, expires_at,"
             " file_lifetime, claimed_until from uploads where id = :i and owner = :o",
            soci::into(u.id), soci::into(u.owner), soci::into(u.filename), soci::into(u.purpose),
            soci::into(u.mime_type), soci::into(u.status), soci::into(u.file_id), soci::into(u.claim), soci::into(b),
            soci::into(c), soci::into(e), soci::into(l), soci::into(cu), soci::use(i), soci::use(o);
        if (!s.got_data()) return false;
        u.claimed_until = cu;
        u.bytes = static_cast<std::uint64_t>(b);
        u.created_at = c;
        u.expires_at = e;
        u.file_lifetime = l;
        return true;
    });
    if (!found) throw aq::http_error(404, "No such Upload object: " + std::string(id), "upload_id");
    return u;
}

void uploads::require_pending(const upload_record& u, std::string_view doing) {
    const std::int64_t now = unix_now();
    const std::string status = u.status_at(now);
    if (status == "pending" && u.claimed_at(now))
        throw aq::http_error(409, "The Upload " + u.id + " is being completed by another request.", "", "conflict");
    if (status != "pending")
        bad("Cannot " + std::string(doing) + " the Upload " + u.id + ": its status is '" + status + "'.");
}

boost::json::object uploads::add_part(const upload_record& u, store::writer& part) {
    auto also = [&](soci::session& s) {
        files_.dialect_.lock(s, upload_lock_space, u.id);
        upload_record now_u = u;
        long long expires = 0, claimed_until = 0;
        s << "select status, expires_at, claimed_until from uploads where id = :i", soci::into(now_u.status),
            soci::into(expires), soci::into(claimed_until), soci::use(u.id);
        now_u.expires_at = expires;
        now_u.claimed_until = claimed_until;
        require_pending(now_u, "add a part to");
        long long total = 0;
        s << "select cast(coalesce(sum(bytes), 0) as bigint) from files where filename = :u and state = 'part'",
            soci::into(total), soci::use(u.id);
        if (static_cast<std::uint64_t>(total) > u.bytes)
            bad("The parts of the Upload would exceed its 'bytes' (" + std::to_string(u.bytes) + ").", "data");
        // Parts take space before they are a file: the owner's files and live parts together
        // stay within quota_bytes, so Uploads never completed cannot fill the store. (Without
        // the owner's lock, concurrent parts may overshoot by what they hold between them.)
        if (cfg_.quota_bytes) {
            long long held = 0, now = unix_now();
            s << "select cast(coalesce(sum(bytes), 0) as bigint) from files where owner = :o and"
                 " state in ('ready', 'part') and expires_at > :n",
                soci::into(held), soci::use(u.owner), soci::use(now);
            if (static_cast<std::uint64_t>(held) > cfg_.quota_bytes)
                throw aq::http_error(413, "Storage quota exceeded: at most " + std::to_string(cfg_.quota_bytes) +
                                              " bytes may be stored.",
                                     "data", "quota_exceeded");
        }
    };
    file_record r = part.commit_part(u.id, u.expires_at, also);
    boost::json::object o;
    o["id"] = wire_part_id(r.id);
    o["object"] = "upload.part";
    o["created_at"] = r.created_at;
    o["upload_id"] = u.id;
    return o;
}

std::vector<file_record> uploads::resolve_parts(const upload_record& u, const std::vector<std::string>& part_ids) {
    if (part_ids.empty()) bad("'part_ids' must name at least one part.", "part_ids");
    std::set<std::string_view> seen;
    std::vector<file_record> parts;
    parts.reserve(part_ids.size());
    for (const auto& id : part_ids) {
        if (!seen.insert(id).second) bad("Duplicate part id in 'part_ids': " + id + ".", "part_ids");
        auto row = part_row_of(id);
        std::optional<file_record> part = row ? files_.find_part(u.owner, u.id, *row) : std::nullopt;
        if (!part) bad("No such Part object: " + id + ".", "part_ids");
        parts.push_back(std::move(*part));
    }
    return parts;
}

std::string uploads::check_content(const upload_record& u, const std::vector<file_record>& parts,
                                   const std::optional<std::string>& md5_hex, const std::function<void()>& alive) {
    sha256 whole;
    std::optional<md5> checksum;
    if (md5_hex) checksum.emplace();
    std::optional<batch_line::validator> validator;
    if (u.purpose == "batch") validator.emplace(batch_validation(cfg_, files_));
    auto check_batch = [&] {
        if (validator && validator->failed()) bad(batch_line::describe(validator->problems().front()));
    };
    std::string buffer(read_buffer_bytes, '\0');
    for (const auto& part : parts) {
        auto reader = files_.open_record(part);
        try {
            reader->open_range(0, part.bytes);
            while (std::size_t n = reader->read(buffer)) {
                std::string_view piece(buffer.data(), n);
                whole.update(piece);
                if (checksum) checksum->update(piece);
                if (validator) validator->push(piece);
                check_batch();
                alive();
            }
        } catch (const store::gone&) {
            bad("The content of part " + wire_part_id(part.id) + " is gone.", "part_ids");
        }
    }
    if (validator) validator->finish();
    check_batch();
    if (checksum && checksum->hex() != lower(*md5_hex))
        bad("The md5 checksum does not match the content of the parts.", "md5");
    return whole.hex();
}

bool uploads::leave_pending(const upload_record& u, std::string_view to, bool end_parts, const std::string& claim) {
    const std::string status(to);
    return files_.pool_.run([&](soci::session& s) {
        sql::write_transaction tx(s, files_.kind());
        files_.dialect_.lock(s, upload_lock_space, u.id);
        long long now = unix_now(), until = claim.empty() ? 0 : now + cfg_.orphan_grace_seconds;
        soci::statement st = (s.prepare << "update uploads set status = :t, claim = :c, claimed_until = :cu"
                                           " where id = :i and expires_at > :n and (status = 'pending' or"
                                           " (status = 'completing' and claimed_until <= :n2))",
                              soci::use(status), soci::use(claim), soci::use(until), soci::use(u.id), soci::use(now),
                              soci::use(now));
        st.execute(true);
        const bool left = affected(st) == 1;
        if (left && end_parts)
            s << "update files set expires_at = 0 where filename = :u and state = 'part'", soci::use(u.id);
        tx.commit();
        return left;
    });
}

void uploads::renew_claim(const upload_record& u, const std::string& claim) {
    long long renewed = files_.pool_.run([&](soci::session& s) {
        long long until = unix_now() + cfg_.orphan_grace_seconds;
        soci::statement st = (s.prepare << "update uploads set claimed_until = :cu where id = :i and claim = :c"
                                           " and status = 'completing'",
                              soci::use(until), soci::use(u.id), soci::use(claim));
        st.execute(true);
        return affected(st);
    });
    if (renewed != 1)
        throw aq::http_error(409, "The Upload " + u.id + " changed while it was being completed.", "", "conflict");
}

void uploads::release_claim(const upload_record& u, const std::string& claim) {
    files_.pool_.run([&](soci::session& s) {
        sql::write_transaction tx(s, files_.kind());
        s << "update uploads set status = 'pending', claim = '', claimed_until = 0 where id = :i and claim = :c"
             " and status = 'completing'",
            soci::use(u.id), soci::use(claim);
        tx.commit();
    });
}

boost::json::object uploads::complete(const upload_record& u, const std::vector<std::string>& part_ids,
                                      const std::optional<std::string>& md5_hex) {
    require_pending(u, "complete");
    std::vector<file_record> parts = resolve_parts(u, part_ids);
    std::uint64_t total = 0;
    for (const auto& p : parts) total += p.bytes;
    if (total != u.bytes)
        bad("The parts total " + std::to_string(total) + " bytes, but the Upload was created with 'bytes' " +
                std::to_string(u.bytes) + ".",
            "part_ids");

    // Claimed: parts added or a cancel from here on are refused, a second completion gets 409.
    const std::string claim = aq::random_id("claim-");
    const bool claimed = leave_pending(u, "completing", false, claim);
    if (!claimed) {
        require_pending(get(u.owner, u.id), "complete");
        throw aq::http_error(409, "The Upload " + u.id + " changed while it was being completed.", "", "conflict");
    }

    // Test-only (test_pause.hpp): the Upload is claimed, nothing of its file written yet.
    pause_point("upload_claimed");
    try {
        // The claim's lease is renewed every third of it while the parts are read and joined.
        std::int64_t renewed_at = unix_now();
        auto keep_claim = [&] {
            if (unix_now() - renewed_at < std::max<std::int64_t>(1, cfg_.orphan_grace_seconds / 3)) return;
            renew_claim(u, claim);
            renewed_at = unix_now();
        };
        const std::string digest = check_content(u, parts, md5_hex, keep_claim);
        auto writer = files_.create(u.owner, u.bytes);
        for (std::size_t i = 0; i < parts.size(); ++i) {
            writer->append(parts[i], i + 1 == parts.size());
            keep_claim();
        }
        writer->adopt_sha256(digest);
        const std::int64_t lifetime = u.file_lifetime ? u.file_lifetime : cfg_.default_expiry_seconds;
        const std::string file_id = writer->id();
        file_record file;
        try {
            file = writer->commit(u.filename, u.purpose, lifetime, {cfg_.quota_bytes, cfg_.quota_files},
                                  [&](soci::session& s) {
                                      soci::statement st =
                                          (s.prepare << "update uploads set status = 'completed', file_id = :f,"
                                                        " claim = '', claimed_until = 0 where id = :i and"
                                                        " status = 'completing' and claim = :c",
                                           soci::use(file_id), soci::use(u.id), soci::use(claim));
                                      st.execute(true);
                                      if (affected(st) != 1)
                                          throw std::runtime_error("the Upload " + u.id + " is no longer completing");
                                      // The parts' content goes with the next purge.
                                      s << "update files set expires_at = 0 where filename = :u and state = 'part'",
                                          soci::use(u.id);
                                  });
        } catch (const store::quota_exceeded& e) {
            throw aq::http_error(413, e.what(), "", "quota_exceeded");
        }
        upload_record done = u;
        done.status = "completed";
        done.file_id = file.id;
        return done.to_json(unix_now(), file);
    } catch (...) {
        try {
            release_claim(u, claim);
        } catch (...) {
            // Left "completing": it answers 409 until the claim's lease runs out.
        }
        throw;
    }
}

boost::json::object uploads::cancel(std::string_view owner, std::string_view id) {
    upload_record u = get(owner, id);
    require_pending(u, "cancel");
    const bool cancelled = leave_pending(u, "cancelled", true);
    if (!cancelled) {
        require_pending(get(owner, id), "cancel");
        throw aq::http_error(409, "The Upload " + u.id + " changed while it was being cancelled.", "", "conflict");
    }
    u.status = "cancelled";
    return u.to_json(unix_now(), std::nullopt);
}

std::size_t uploads::purge(std::size_t limit) {
    return files_.pool_.run([&](soci::session& s) {
        sql::write_transaction tx(s, files_.kind());
        long long until = unix_now() - retention_seconds, n = static_cast<long long>(limit);
        soci::statement st = (s.prepare << "delete from uploads where id in (select id from uploads where"
                                           " expires_at <= :t order by expires_at limit :l)",
                              soci::use(until), soci::use(n));
        st.execute(true);
        tx.commit();
        return static_cast<std::size_t>(affected(st));
    });
}

}  // namespace aq::files
