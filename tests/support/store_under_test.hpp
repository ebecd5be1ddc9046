// The content store (and metadata database) a files suite runs its cases on, so that one test
// binary runs against every store: ctest runs it once per store, each run with its own
// environment (aq_add_run in tests/CMakeLists.txt),
//
//   AQ_TEST_STORE      "filesystem" (when unset), "database" or "s3"
//   AQ_TEST_POSTGRES   "1": metadata in a fresh database of the "postgres" fixture; unset: a
//                      SQLite file of the gateway's own
//
// With SQLite and "filesystem" the config names no store at all: the suite runs the embedded
// default (the folder beside the database). Otherwise the store is named, with a folder of the
// instance's own (filesystem) or a fresh bucket of the "s3" fixture (s3, FIXTURES s3).
//
//   aqt::store_under_test where;  // this run's store
//   aqt::gateway gw(json::object{{"plugins", {{"files", where.files_config({...})}}}});
//   where.attach(gw);
//   BOOST_TEST(where.content_objects() == 0);
#pragma once

#include "s3/client.hpp"

#include <boost/json/object.hpp>

#include <filesystem>
#include <optional>
#include <string>

namespace aqt {

class gateway;

// Runs `sql` on a database (sqlite:PATH or a PostgreSQL URL) and returns the first column of the
// first row as text ("" when there is no row). Throws std::runtime_error on failure.
std::string sql_value(const std::string& database, const std::string& sql);
// Runs a statement that returns no rows.
void sql_exec(const std::string& database, const std::string& sql);

// This run's settings: AQ_TEST_STORE ("filesystem" when unset; store_under_test refuses a name
// other than the three stores) and AQ_TEST_POSTGRES ("1" or unset; anything else throws
// std::invalid_argument).
std::string suite_store();
bool suite_on_postgres();

class store_under_test {
public:
    // This run's store and database: suite_store(), suite_on_postgres().
    store_under_test();
    store_under_test(std::string store, bool postgres);
    ~store_under_test();
    store_under_test(const store_under_test&) = delete;
    store_under_test& operator=(const store_under_test&) = delete;

    const std::string& name() const noexcept { return store_; }
    bool on_postgres() const noexcept { return postgres_; }
    // "filesystem on SQLite", "s3 on PostgreSQL"...
    std::string label() const;

    // `extra` (plugins.files keys of the test) plus what selects this store and database.
    boost::json::object files_config(boost::json::object extra = {}) const;
    // The instance's SQLite database and default folder live in its directory.
    void attach(const gateway& gw);

    // The metadata database's URL (for SQLite: known after attach()).
    const std::string& database() const noexcept { return database_; }
    // The filesystem store's folder (empty for other stores).
    const std::filesystem::path& folder() const noexcept { return folder_; }
    const std::optional<aq::s3::client_config>& s3() const noexcept { return s3_; }

    // What the store holds: regular files anywhere under the folder (whatever their name),
    // objects under the S3 prefix, or chunk rows of the database store.
    std::size_t content_objects() const;
    // S3 multipart uploads not finished or aborted under the prefix (0 for other stores).
    std::size_t unfinished_uploads() const;
    // Rows of the files table, in any state.
    long long rows() const;

private:
    std::string store_;
    bool postgres_ = false;
    std::string database_;
    std::filesystem::path own_dir_, folder_;
    std::optional<aq::s3::client_config> s3_;
};

}  // namespace aqt
