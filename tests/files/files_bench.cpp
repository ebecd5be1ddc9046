// files_bench: upload and download of one large file through a real aqueductd, on SQLite and on
// PostgreSQL, printing MiB/s and the gateway's peak RSS (VmHWM), next to the database's own
// bulk write of the same bytes through the same code path the store uses (the reference: how
// close the gateway gets to what the database can take).
//
//   build-dir/tests/files/files_bench [--mib 256] [--postgres URL] [--sqlite-only]
//
// Without --postgres a throwaway server is started with tests/support/postgres.sh.
#include "support/digest.hpp"
#include "support/gateway.hpp"
#include "support/http_client.hpp"

#include "sql/dialect.hpp"
#include "sql/pool.hpp"
#include "sql/transaction.hpp"

#include <boost/json.hpp>

#include <soci/soci.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <string>

namespace json = boost::json;
using clock_type = std::chrono::steady_clock;

namespace {

std::string random_block(std::size_t n) {
    std::string s(n, '\0');
    std::uint64_t x = 88172645463325252ull;
    for (auto& c : s) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        c = static_cast<char>(x);
    }
    return s;
}

long vm_hwm_kib(pid_t pid) {
    std::ifstream in("/proc/" + std::to_string(pid) + "/status");
    std::string line;
    while (std::getline(in, line))
        if (line.starts_with("VmHWM:")) return std::atol(line.c_str() + 6);
    return -1;
}

double seconds_since(clock_type::time_point t0) {
    return std::chrono::duration<double>(clock_type::now() - t0).count();
}

// The database alone: `mib` chunks of 1 MiB in one transaction, as the store writes them.
double reference_write(const std::string& url, std::size_t mib, const std::string& block) {
    aq::sql::pool pool(url, 1);
    auto s = pool.lease();
    const bool pg = pool.kind() == aq::sql::backend::postgresql;
    const aq::sql::dialect d(pool.kind());
    *s << "drop table if exists bench_chunks";
    *s << "create table bench_chunks (seq integer primary key, data " + std::string(d.blob_type()) + " not null)";
    if (pg) *s << "alter table bench_chunks alter column data set storage external";
    auto t0 = clock_type::now();
    {
        aq::sql::write_transaction tx(*s, pool.kind());
        for (std::size_t i = 0; i < mib; ++i)
            d.execute(*s, "insert into bench_chunks (seq, data) values ($1, $2)",
                      {aq::sql::param::integer(static_cast<long long>(i)), aq::sql::param::blob(block)});
        tx.commit();
    }
    double secs = seconds_since(t0);
    *s << "drop table bench_chunks";
    return static_cast<double>(mib) / secs;
}

void run(const std::string& label, const std::string& database, std::size_t mib) {
    const std::string block = random_block(1 << 20);
    json::object files{{"enabled", true}, {"purposes", json::array{"user_data"}},
                       {"max_file_bytes", static_cast<std::uint64_t>(mib + 1) << 20}};
    if (!database.empty()) files["database"] = database;
    aqt::gateway gw(json::object{{"plugins", json::object{{"files", files}}}});
    std::string db = database.empty() ? "sqlite:" + (gw.dir() / "aqueduct.db").string() : database;
    aqt::http::client c(gw.port(), std::chrono::seconds(600));
    c.default_headers["Authorization"] = gw.bearer("alice");
    long rss_idle = vm_hwm_kib(gw.pid());

    const std::string boundary = "----files-bench-boundary";
    const std::string head = "--" + boundary +
                             "\r\nContent-Disposition: form-data; name=\"purpose\"\r\n\r\nuser_data\r\n--" + boundary +
                             "\r\nContent-Disposition: form-data; name=\"file\"; filename=\"bench.bin\"\r\n"
                             "Content-Type: application/octet-stream\r\n\r\n";
    const std::string tail = "\r\n--" + boundary + "--\r\n";
    const std::uint64_t total = head.size() + (static_cast<std::uint64_t>(mib) << 20) + tail.size();
    std::uint64_t sent = 0;
    aqt::sha256 content_hash;
    for (std::size_t i = 0; i < mib; ++i) content_hash.update(block);
    const std::string expected = content_hash.hex();

    aqt::http::request up;
    up.method = "POST";
    up.target = "/v1/files";
    up.headers = {{"Content-Type", "multipart/form-data; boundary=" + boundary}};
    up.content_length = total;
    up.body_source = [&](char* buf, std::size_t cap) -> std::size_t {
        std::size_t n = 0;
        while (n < cap && sent < total) {
            std::uint64_t body_end = head.size() + (static_cast<std::uint64_t>(mib) << 20);
            std::size_t take;
            if (sent < head.size()) {
                take = std::min<std::uint64_t>(cap - n, head.size() - sent);
                std::memcpy(buf + n, head.data() + sent, take);
            } else if (sent < body_end) {
                std::uint64_t off = (sent - head.size()) % block.size();
                take = std::min<std::uint64_t>({cap - n, block.size() - off, body_end - sent});
                std::memcpy(buf + n, block.data() + off, take);
            } else {
                std::uint64_t off = sent - body_end;
                take = std::min<std::uint64_t>(cap - n, tail.size() - off);
                std::memcpy(buf + n, tail.data() + off, take);
            }
            n += take;
            sent += take;
        }
        return n;
    };
    auto t0 = clock_type::now();
    auto r = c.send(up);
    double up_secs = seconds_since(t0);
    if (r.status != 200) throw std::runtime_error(label + " upload failed: " + std::to_string(r.status) + " " + r.body);
    std::string id(json::parse(r.body).at("id").as_string());
    long rss_upload = vm_hwm_kib(gw.pid());

    aqt::http::request down;
    down.method = "GET";
    down.target = "/v1/files/" + id + "/content";
    down.keep_body = false;
    t0 = clock_type::now();
    auto d = c.send(down);
    double down_secs = seconds_since(t0);
    if (d.status != 200 || d.body_sha256 != expected)
        throw std::runtime_error(label + " download failed or differs: " + std::to_string(d.status));
    long rss_download = vm_hwm_kib(gw.pid());
    gw.stop();

    double ref = reference_write(db, mib, block);
    double up_rate = static_cast<double>(mib) / up_secs, down_rate = static_cast<double>(mib) / down_secs;
    std::printf("%-10s %4zu MiB  upload %7.1f MiB/s  download %7.1f MiB/s  | db bulk write %7.1f MiB/s "
                "(upload = %.0f%%)  | gateway VmHWM idle %ld MiB, after upload %ld MiB, after download %ld MiB\n",
                label.c_str(), mib, up_rate, down_rate, ref, 100.0 * up_rate / ref, rss_idle / 1024,
                rss_upload / 1024, rss_download / 1024);
    std::fflush(stdout);
}

}  // namespace

int main(int argc, char** argv) {
    std::size_t mib = 256;
    std::string postgres;
    bool sqlite_only = false;
    for (int i = 1; i < argc; ++i) {
        std::string a = argv[i];
        if (a == "--mib" && i + 1 < argc) mib = std::stoul(argv[++i]);
        else if (a == "--postgres" && i + 1 < argc) postgres = argv[++i];
        else if (a == "--sqlite-only") sqlite_only = true;
        else {
            std::cerr << "usage: files_bench [--mib N] [--postgres URL] [--sqlite-only]\n";
            return 2;
        }
    }
    try {
        run("sqlite", "", mib);
        if (sqlite_only) return 0;
        std::filesystem::path state;
        if (postgres.empty()) {
            state = std::filesystem::temp_directory_path() / ("files-bench-pg-" + aqt::random_hex(4));
            std::string cmd = "bash '" AQ_FILES_POSTGRES_SH "' start '" + state.string() + "' >/dev/null";
            if (std::system(cmd.c_str()) != 0) throw std::runtime_error("could not start PostgreSQL: " + cmd);
            std::ifstream in(state / "url");
            std::getline(in, postgres);
        }
        try {
            run("postgresql", postgres, mib);
        } catch (...) {
            if (!state.empty())
                std::system(("bash '" AQ_FILES_POSTGRES_SH "' stop '" + state.string() + "' >/dev/null").c_str());
            throw;
        }
        if (!state.empty())
            std::system(("bash '" AQ_FILES_POSTGRES_SH "' stop '" + state.string() + "' >/dev/null").c_str());
    } catch (const std::exception& e) {
        std::cerr << "files_bench: " << e.what() << "\n";
        return 1;
    }
}
