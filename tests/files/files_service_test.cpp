// The "files" v1 service table as the batches plugin uses it, without a host beyond a logger,
// on every content store (built once per store: AQ_TEST_STORE; metadata in a SQLite file):
// streaming writer -> commit -> reader, ownership, abort, limits and the quota, with the store
// itself checked for leftovers.
#define BOOST_TEST_MODULE files_service
#include <boost/test/unit_test.hpp>

#include "config.hpp"
#include "content_stores.hpp"
#include "service.hpp"
#include "store.hpp"

#include "support/digest.hpp"
#include "support/store_under_test.hpp"

#include "sql/pool.hpp"

#include <filesystem>

namespace {

void log_line(aq_host*, aq_log_level, aq_str) {}

struct service_fixture {
    std::filesystem::path dir;
    aqt::store_under_test where;  // this run's (AQ_TEST_STORE, AQ_TEST_POSTGRES)
    aq_host_api api{};
    aq::files::config cfg;
    std::unique_ptr<aq::sql::pool> pool;
    std::unique_ptr<aq::files::content_stores> stores;
    std::unique_ptr<aq::files::store> files;
    std::unique_ptr<aq::files::service> svc;
    const aq_files_v1* t = nullptr;

    service_fixture() {
        dir = std::filesystem::temp_directory_path() / ("files-service-" + aqt::random_hex(6));
        std::filesystem::create_directories(dir);
        api.struct_size = sizeof api;
        api.log = &log_line;
        boost::json::object section = where.files_config();
        section["database"] = "sqlite:" + (dir / "aqueduct.db").string();
        if (where.name() == "s3") section["s3"].as_object()["part_bytes"] = 5 << 20;  // the smallest S3 allows
        cfg = aq::files::config::parse(section);
        cfg.max_file_bytes = 1u << 20;
        cfg.max_output_file_bytes = 5u << 20;
        aq::sql::pool_options po;
        po.size = 2;
        po.streaming = 1;
        pool = std::make_unique<aq::sql::pool>(cfg.database, po);
        stores = std::make_unique<aq::files::content_stores>(cfg, *pool, nullptr);
        aq::files::store::options so;
        so.scratch_folder = dir;
        files = std::make_unique<aq::files::store>(*pool, *stores, so);
        svc = std::make_unique<aq::files::service>(aq::host(&api), cfg, *files);
        t = svc->table();
        if (where.name() == "filesystem") BOOST_TEST_REQUIRE(cfg.filesystem.path == (dir / "files").string());
    }
    ~service_fixture() {
        svc.reset();
        files.reset();
        stores.reset();
        pool.reset();
        std::filesystem::remove_all(dir);
    }

    // Content objects in the store (files, objects, chunk rows) and rows in the database.
    std::size_t stored() const {
        if (where.name() == "filesystem") {
            std::size_t n = 0;
            for (auto& e : std::filesystem::recursive_directory_iterator(cfg.filesystem.path))
                if (e.is_regular_file()) ++n;
            return n;
        }
        if (where.name() == "s3") return aq::s3::client(*where.s3()).list_all_objects("files/").size();
        return static_cast<std::size_t>(std::stoll(aqt::sql_value(cfg.database, "select count(*) from file_chunks")));
    }
    long long rows() const { return std::stoll(aqt::sql_value(cfg.database, "select count(*) from files")); }

    aq_file_create params(const char* owner, const char* filename) {
        aq_file_create p{};
        p.struct_size = sizeof p;
        p.owner = aq::to_aq(owner);
        p.filename = aq::to_aq(filename);
        p.purpose = aq::to_aq("batch_output");
        return p;
    }
};

std::string pattern(std::size_t n) {
    std::string s(n, '\0');
    for (std::size_t i = 0; i < n; ++i) s[i] = static_cast<char>((i * 131) ^ (i >> 9));
    return s;
}

}  // namespace

BOOST_FIXTURE_TEST_SUITE(service, service_fixture)

BOOST_AUTO_TEST_CASE(write_commit_then_read_back_exact_bytes) {
    BOOST_TEST(t->struct_size == sizeof(aq_files_v1));
    std::string content = pattern(2 * 1024 * 1024 + 777);
    auto p = params("team-a", "output.jsonl");
    aq_files_writer* w = nullptr;
    BOOST_TEST_REQUIRE(t->create(t->ctx, &p, &w) == AQ_OK);
    for (std::size_t off = 0; off < content.size(); off += 100000)
        BOOST_TEST_REQUIRE(t->write(w, aq::to_aq(std::string_view(content).substr(off, 100000))) == AQ_OK);
    const aq_file_info* info = nullptr;
    BOOST_TEST_REQUIRE(t->commit(w, &info) == AQ_OK);
    BOOST_TEST(info->bytes == content.size());
    BOOST_TEST(aq::to_sv(info->purpose) == "batch_output");
    BOOST_TEST(aq::to_sv(info->owner) == "team-a");
    BOOST_TEST(info->expires_at == info->created_at + cfg.default_expiry_seconds);
    std::string id(aq::to_sv(info->id));
    BOOST_TEST(t->commit(w, nullptr) == AQ_ERR_STATE);
    t->close_writer(w);

    aq_files_reader* r = nullptr;
    BOOST_TEST_REQUIRE(t->open(t->ctx, aq::to_aq(id), aq::to_aq("team-a"), &r) == AQ_OK);
    BOOST_TEST(t->reader_info(r)->bytes == content.size());
    BOOST_TEST(aq::to_sv(t->reader_info(r)->filename) == "output.jsonl");
    std::string back;
    char buf[70000];
    for (int64_t n; (n = t->read(r, buf, sizeof buf)) > 0;) back.append(buf, static_cast<std::size_t>(n));
    BOOST_TEST((back == content));
    t->close_reader(r);
    BOOST_TEST(stored() == (where.name() == "database" ? 3u : 1u));  // three 1 MiB chunks, or one file/object
    BOOST_TEST(rows() == 1);
}

BOOST_AUTO_TEST_CASE(foreign_or_missing_file_is_not_found) {
    auto p = params("alice", "o.jsonl");
    aq_files_writer* w = nullptr;
    BOOST_TEST_REQUIRE(t->create(t->ctx, &p, &w) == AQ_OK);
    BOOST_TEST(t->write(w, aq::to_aq("x")) == AQ_OK);
    const aq_file_info* info = nullptr;
    BOOST_TEST_REQUIRE(t->commit(w, &info) == AQ_OK);
    std::string id(aq::to_sv(info->id));
    t->close_writer(w);
    aq_files_reader* r = nullptr;
    BOOST_TEST(t->open(t->ctx, aq::to_aq(id), aq::to_aq("bob"), &r) == AQ_ERR_NOT_FOUND);
    BOOST_TEST(r == nullptr);
    BOOST_TEST(t->open(t->ctx, aq::to_aq("file-nope"), aq::to_aq("alice"), &r) == AQ_ERR_NOT_FOUND);
    // remove (appended to the table) answers the same, and deletes only the owner's file.
    BOOST_TEST_REQUIRE(AQ_HAS_FIELD(t, aq_files_v1, remove));
    BOOST_TEST(t->remove(t->ctx, aq::to_aq(id), aq::to_aq("bob")) == AQ_ERR_NOT_FOUND);
    BOOST_TEST(t->remove(t->ctx, aq::to_aq("file-nope"), aq::to_aq("alice")) == AQ_ERR_NOT_FOUND);
    BOOST_TEST(t->remove(t->ctx, aq::to_aq(id), aq::to_aq("alice")) == AQ_OK);
    BOOST_TEST(t->open(t->ctx, aq::to_aq(id), aq::to_aq("alice"), &r) == AQ_ERR_NOT_FOUND);
    BOOST_TEST(t->remove(t->ctx, aq::to_aq(id), aq::to_aq("alice")) == AQ_ERR_NOT_FOUND);
}

BOOST_AUTO_TEST_CASE(closing_without_commit_leaves_nothing) {
    auto p = params("alice", "o.jsonl");
    aq_files_writer* w = nullptr;
    BOOST_TEST_REQUIRE(t->create(t->ctx, &p, &w) == AQ_OK);
    BOOST_TEST(t->write(w, aq::to_aq("abc")) == AQ_OK);
    t->close_writer(w);
    BOOST_TEST(files->list("alice", {}).files.empty());
    BOOST_TEST(stored() == 0u);
    BOOST_TEST(rows() == 0);

    // The same with content past a chunk (database) and a part (s3: 5 MiB parts here would
    // need more; 2 MiB crosses the database store's chunks and the filesystem's first write).
    BOOST_TEST_REQUIRE(t->create(t->ctx, &p, &w) == AQ_OK);
    std::string big = pattern(2 * 1024 * 1024 + 5);
    BOOST_TEST(t->write(w, aq::to_aq(big)) == AQ_OK);
    t->close_writer(w);
    BOOST_TEST(stored() == 0u);
    BOOST_TEST(rows() == 0);
}

BOOST_AUTO_TEST_CASE(limits_and_invalid_arguments) {
    auto p = params("alice", "o.jsonl");
    aq_files_writer* w = nullptr;
    BOOST_TEST_REQUIRE(t->create(t->ctx, &p, &w) == AQ_OK);
    // An output file may exceed the upload limit, up to its own.
    std::string big(cfg.max_output_file_bytes, 'x');
    BOOST_TEST(cfg.max_output_file_bytes > cfg.max_file_bytes);
    BOOST_TEST(t->write(w, aq::to_aq(big)) == AQ_OK);
    BOOST_TEST(t->write(w, aq::to_aq("y")) == AQ_ERR_LIMIT);
    const aq_file_info* info = nullptr;
    BOOST_TEST(t->write(w, aq::to_aq("")) == AQ_ERR_LIMIT);
    BOOST_TEST_REQUIRE(t->commit(w, &info) == AQ_ERR_LIMIT);  // a refused write spoils the file
    t->close_writer(w);
    BOOST_TEST(files->list("alice", {}).files.empty());
    BOOST_TEST(stored() == 0u);
    BOOST_TEST(rows() == 0);

    BOOST_TEST_REQUIRE(t->create(t->ctx, &p, &w) == AQ_OK);
    BOOST_TEST(t->write(w, aq::to_aq(big)) == AQ_OK);
    BOOST_TEST_REQUIRE(t->commit(w, &info) == AQ_OK);
    BOOST_TEST(info->bytes == cfg.max_output_file_bytes);
    t->close_writer(w);

    auto bad = params("alice", "a/b.jsonl");
    BOOST_TEST(t->create(t->ctx, &bad, &w) == AQ_ERR_INVALID);
    auto no_owner = params("", "o.jsonl");
    BOOST_TEST(t->create(t->ctx, &no_owner, &w) == AQ_ERR_INVALID);
    aq_file_create small{};
    small.struct_size = offsetof(aq_file_create, purpose);  // an older, shorter struct
    BOOST_TEST(t->create(t->ctx, &small, &w) == AQ_ERR_INVALID);
}

// An output of several S3 parts (multipart), database chunks, or one file, read back exactly.
BOOST_AUTO_TEST_CASE(a_large_output_is_stored_whole) {
    cfg.max_output_file_bytes = 16u << 20;
    std::string content = pattern((11u << 20) + 12345);
    auto p = params("team-a", "big.jsonl");
    aq_files_writer* w = nullptr;
    BOOST_TEST_REQUIRE(t->create(t->ctx, &p, &w) == AQ_OK);
    for (std::size_t off = 0; off < content.size(); off += 300000)
        BOOST_TEST_REQUIRE(t->write(w, aq::to_aq(std::string_view(content).substr(off, 300000))) == AQ_OK);
    const aq_file_info* info = nullptr;
    BOOST_TEST_REQUIRE(t->commit(w, &info) == AQ_OK);
    std::string id(aq::to_sv(info->id));
    BOOST_TEST(aq::to_sv(info->sha256) == aqt::sha256_hex(content));
    t->close_writer(w);
    aq_files_reader* r = nullptr;
    BOOST_TEST_REQUIRE(t->open(t->ctx, aq::to_aq(id), aq::to_aq("team-a"), &r) == AQ_OK);
    std::string back;
    std::string buf(1 << 20, '\0');
    for (int64_t n; (n = t->read(r, buf.data(), buf.size())) > 0;) back.append(buf.data(), static_cast<std::size_t>(n));
    t->close_reader(r);
    BOOST_TEST((back == content));
    if (where.name() == "s3") BOOST_TEST(where.unfinished_uploads() == 0u);
}

BOOST_AUTO_TEST_CASE(output_files_pass_the_quota_then_count_toward_it) {
    const aq::files::store::quota quota{100, 2};  // 100 bytes, 2 files
    auto upload = [&](const std::string& content) {
        auto writer = files->create("user:alice", 1000);
        writer->write(content);
        return writer->commit("in.jsonl", "batch", 3600, quota);
    };
    upload(std::string(60, 'a'));
    // A batch's output of 80 bytes: over the byte quota, delivered anyway.
    auto p = params("user:alice", "out.jsonl");
    aq_files_writer* w = nullptr;
    BOOST_TEST_REQUIRE(t->create(t->ctx, &p, &w) == AQ_OK);
    BOOST_TEST(t->write(w, aq::to_aq(std::string(80, 'o'))) == AQ_OK);
    const aq_file_info* info = nullptr;
    BOOST_TEST_REQUIRE(t->commit(w, &info) == AQ_OK);
    t->close_writer(w);
    // It counts: 140 of 100 bytes and 2 of 2 files used, so the next upload is refused.
    BOOST_CHECK_THROW(upload("x"), aq::files::store::quota_exceeded);
    BOOST_TEST(files->list("user:alice", {}).files.size() == 2u);
}

BOOST_AUTO_TEST_SUITE_END()
