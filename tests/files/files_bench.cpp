// files_bench: what a user of the Files API gets, per content store, beside what the same machine
// does without the gateway, all in one run (issue 9, items 4 and 5).
//
//   build-dir/tests/files/files_bench [--mib 1024] [--stores filesystem,database,s3]
//                                     [--line-bytes 2048] [--connections 32] [--seconds 5]
//                                     [--perf DIR] [--s3 '{"part_bytes": 16777216}']
//
// For each store a real aqueductd is started with the default config for that store (filesystem:
// the embedded default beside a SQLite database; database: chunks in a throwaway PostgreSQL that
// also holds the metadata; s3: a throwaway Swift + s3api, metadata in SQLite). The only keys
// set besides the store are limits: what a file this large needs (max_file_bytes,
// max_requests_per_file) and max_requests_per_principal above wrk's connections. Then, each from a separate client process:
//   upload     curl -F purpose=batch -F file=@FILE: a valid batch JSONL of --mib MiB in lines of
//              --line-bytes bytes, validated by the gateway like any batch upload
//   download   curl -o /dev/null of its content
//   metadata   wrk, --connections connections on 2 threads for --seconds: GET /v1/files/{id}
// and the references, measured right before the gateway's figure they compare with:
//   nginx      (filesystem only; bench_nginx.hpp) WebDAV PUT of the same file with curl -T,
//              GET of it to /dev/null (sendfile), the gateway's metadata JSON as a static file
//              with the same wrk settings
//   raw store  filesystem: write(2) of the same bytes into the store's folder, then fsync;
//              database: 1 MiB chunk inserts into a file_chunks-like table of the same
//              PostgreSQL, one transaction (the store's statements, without HTTP);
//              s3: one streamed PUT and one GET of as many bytes to the same server with the
//              store's client (tests/support/s3_reference.hpp)
// It prints each figure, its reference, the ratio, the issue's target, and the gateway's peak
// RSS (VmHWM) growth over the upload and download, and the CPU seconds the gateway (and, for s3,
// Swift's servers) spent in each transfer, which a loaded machine hardly changes. With --perf DIR the gateway is recorded with
// `perf record --call-graph dwarf` (libraries have no frame pointers) during each phase (DIR/STORE-PHASE.data): the figures of such a run are not
// the ones to report.
//
// A program, not a test: its figures depend on the machine and its load (the load average is
// printed at start and end).
#include "bench_nginx.hpp"

#include "aqt_build_paths.h"
#include "support/child_process.hpp"
#include "support/digest.hpp"
#include "support/gateway.hpp"
#include "support/process_stats.hpp"
#include "support/s3.hpp"
#include "support/s3_reference.hpp"

#include "sql/dialect.hpp"
#include "sql/pool.hpp"
#include "sql/transaction.hpp"

#include <boost/json.hpp>

#include <soci/soci.h>

#include <fcntl.h>
#include <unistd.h>

#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

namespace json = boost::json;
namespace fs = std::filesystem;
using clock_type = std::chrono::steady_clock;
using namespace std::chrono_literals;

namespace {

constexpr std::uint64_t MiB = 1 << 20;

struct options {
    std::uint64_t mib = 1024;
    std::vector<std::string> stores{"filesystem", "database", "s3"};
    std::size_t line_bytes = 2048;
    int connections = 32;
    int seconds = 5;
    fs::path perf_dir;
    json::object s3_extra;  // --s3 JSON: more keys of the s3 store's settings (to compare part sizes)
};

// One line of the report.
struct figure {
    std::string store, what;
    double value = 0;
    std::string unit;
    std::string reference;
    double reference_value = 0;
    double target = 0;  // the issue's minimum ratio; 0: none
};

std::vector<figure> report;

double seconds_since(clock_type::time_point t0) {
    return std::chrono::duration<double>(clock_type::now() - t0).count();
}

std::string load_average() {
    std::ifstream in("/proc/loadavg");
    std::string a, b, c;
    in >> a >> b >> c;
    return a + " " + b + " " + c;
}

// A valid batch file: `lines` requests of exactly `line_bytes` bytes (newline included), prose
// with escapes and two-byte UTF-8 in the user message, distinct custom_ids.
void write_batch_file(const fs::path& path, std::uint64_t lines, std::size_t line_bytes) {
    static const std::string prose =
        "Summarize the following report in three sentences, keeping every figure: "
        "the caf\xc3\xa9 on the corner sold 1,204 cups in M\xc3\xa4rz, "
        "up from 987 \\\"last year\\\";\\nthe bakery next door, 3.5% fewer loaves. ";
    std::ofstream out(path, std::ios::binary);
    std::string line;
    for (std::uint64_t i = 0; i < lines; ++i) {
        char id[32];
        std::snprintf(id, sizeof id, "request-%010llu", static_cast<unsigned long long>(i));
        line = R"({"custom_id":")" + std::string(id) +
               R"(","method":"POST","url":"/v1/chat/completions","body":{"model":"gpt-4o-mini","max_tokens":1000,)"
               R"("messages":[{"role":"system","content":"You are a helpful assistant."},{"role":"user","content":")";
        const std::string end = "\"}]}}\n";
        if (line.size() + end.size() > line_bytes) throw std::runtime_error("--line-bytes is too small");
        std::size_t room = line_bytes - line.size() - end.size();
        while (room > 0) {
            // Never cut an escape or a UTF-8 sequence: pad the rest with spaces.
            std::size_t take = std::min(room, prose.size());
            if (take < prose.size()) {
                line.append(take, ' ');
            } else {
                line += prose;
            }
            room -= take;
        }
        line += end;
        out.write(line.data(), static_cast<std::streamsize>(line.size()));
    }
    if (!out) throw std::runtime_error("could not write " + path.string());
}

// What curl reported of one transfer.
struct transfer {
    int status = 0;
    double seconds = 0;
    std::string body;  // the response body when kept
};

transfer curl(std::vector<std::string> args, const fs::path& body_file) {
    std::vector<std::string> all{"-sS", "-o", body_file.empty() ? "/dev/null" : body_file.string(), "-w",
                                 "%{http_code} %{time_total}"};
    all.insert(all.end(), args.begin(), args.end());
    auto r = aqt::run_program("curl", all, {}, 900s);
    transfer t;
    std::istringstream in(r.output);
    in >> t.status >> t.seconds;
    if (!r.status.success() || !in) throw std::runtime_error("curl failed: " + r.output);
    if (!body_file.empty()) {
        std::ifstream b(body_file);
        t.body.assign(std::istreambuf_iterator<char>(b), {});
    }
    return t;
}

// wrk's requests per second; throws when any answer was not 2xx/3xx or a socket failed. No Lua
// script: a `response` callback (which named the first bad status) made wrk build a table of
// every response's headers and body, which took so much of the 2 cores that the gateway ran
// at 0.7 of its speed without it. A failure is described by one more request, with curl.
double wrk(const options& o, const std::string& url, const std::string& authorization) {
    auto r = aqt::run_program("wrk",
                              {"-t2", "-c" + std::to_string(o.connections), "-d" + std::to_string(o.seconds) + "s",
                               "-H", "Authorization: " + authorization, url},
                              {}, std::chrono::seconds(o.seconds + 60));
    auto at = r.output.find("Requests/sec:");
    if (!r.status.success() || at == std::string::npos) throw std::runtime_error("wrk failed: " + r.output);
    if (r.output.find("Non-2xx") != std::string::npos || r.output.find("Socket errors") != std::string::npos) {
        auto probe = aqt::run_program("curl", {"-sS", "-i", "-H", "Authorization: " + authorization, url}, {},
                                      std::chrono::seconds(30));
        throw std::runtime_error("wrk saw failures: " + r.output + "\none more request answered:\n" + probe.output);
    }
    return std::atof(r.output.c_str() + at + 13);
}

// `perf record` of a process while it lives; stopped (SIGINT, so perf writes its file) by
// the destructor.
class perf_recording {
public:
    perf_recording(const options& o, pid_t pid, const std::string& name) {
        if (o.perf_dir.empty()) return;
        fs::create_directories(o.perf_dir);
        perf_.emplace("/usr/bin/perf", std::vector<std::string>{"record", "--call-graph", "dwarf,16384", "-F", "1000",
                                                                "-p", std::to_string(pid), "-o",
                                                                (o.perf_dir / (name + ".data")).string()});
        std::this_thread::sleep_for(500ms);  // perf attaches to every thread first
    }
    ~perf_recording() {
        if (!perf_) return;
        ::kill(perf_->pid(), SIGINT);
        perf_->wait(60s);
    }

private:
    std::optional<aqt::child_process> perf_;
};

double mib_per_s(std::uint64_t bytes, double seconds) { return static_cast<double>(bytes) / MiB / seconds; }

// The filesystem's own write of the same bytes into `folder`: 1 MiB write(2)s, fsync, close.
double raw_file_write(const fs::path& source, const fs::path& folder) {
    std::vector<char> buf(MiB);
    const fs::path target = folder / "files-bench-raw-write";
    int in = ::open(source.c_str(), O_RDONLY | O_CLOEXEC);
    auto t0 = clock_type::now();
    int out = ::open(target.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (in < 0 || out < 0) throw std::runtime_error("raw write: cannot open " + target.string());
    std::uint64_t total = 0;
    for (;;) {
        ssize_t n = ::read(in, buf.data(), buf.size());
        if (n < 0) throw std::runtime_error("raw write: read failed");
        if (n == 0) break;
        for (ssize_t done = 0; done < n;) {
            ssize_t w = ::write(out, buf.data() + done, static_cast<std::size_t>(n - done));
            if (w < 0) throw std::runtime_error("raw write: write failed");
            done += w;
        }
        total += static_cast<std::uint64_t>(n);
    }
    if (::fsync(out) != 0) throw std::runtime_error("raw write: fsync failed");
    ::close(out);
    double secs = seconds_since(t0);
    ::close(in);
    fs::remove(target);
    return mib_per_s(total, secs);
}

// PostgreSQL's own write of the same bytes, as the database store writes them: 1 MiB chunks
// into a table like file_chunks (bytea, storage external), here in one transaction.
double raw_database_write(const std::string& url, const fs::path& source) {
    aq::sql::pool pool(url, 1);
    auto s = pool.lease();
    const aq::sql::dialect d(pool.kind());
    *s << "drop table if exists bench_chunks";
    *s << "create table bench_chunks (seq integer primary key, data " + std::string(d.blob_type()) + " not null)";
    if (pool.kind() == aq::sql::backend::postgresql) *s << "alter table bench_chunks alter column data set storage external";
    std::ifstream in(source, std::ios::binary);
    std::string chunk(MiB, '\0');
    std::uint64_t total = 0;
    auto t0 = clock_type::now();
    {
        aq::sql::write_transaction tx(*s, pool.kind());
        for (long long seq = 0;; ++seq) {
            in.read(chunk.data(), static_cast<std::streamsize>(chunk.size()));
            auto n = static_cast<std::size_t>(in.gcount());
            if (n == 0) break;
            d.execute(*s, "insert into bench_chunks (seq, data) values ($1, $2)",
                      {aq::sql::param::integer(seq), aq::sql::param::blob(std::string_view(chunk.data(), n))});
            total += n;
        }
        tx.commit();
    }
    double secs = seconds_since(t0);
    *s << "drop table bench_chunks";
    return mib_per_s(total, secs);
}

// The throwaway servers a store needs, started once for the run.
struct servers {
    fs::path pg_state, s3_state;
    std::string pg_url;
    std::optional<aq::s3::client_config> s3;

    ~servers() {
        const std::string src = AQ_TEST_SOURCE_DIR;
        if (!pg_state.empty())
            std::system(("bash '" + src + "/tests/support/postgres.sh' stop '" + pg_state.string() + "' >/dev/null").c_str());
        if (!s3_state.empty())
            std::system(("bash '" + src + "/tests/support/s3.sh' stop '" + s3_state.string() + "' >/dev/null").c_str());
    }
    void need_postgres(const fs::path& work) {
        if (!pg_state.empty()) return;
        pg_state = work / "postgres";
        std::string cmd = "bash '" AQ_TEST_SOURCE_DIR "/tests/support/postgres.sh' start '" + pg_state.string() + "' >/dev/null";
        if (std::system(cmd.c_str()) != 0) throw std::runtime_error("could not start PostgreSQL");
        std::ifstream in(pg_state / "url");
        std::getline(in, pg_url);
    }
    void need_s3(const fs::path& work) {
        if (!s3_state.empty()) return;
        s3_state = work / "s3";
        std::string cmd = "bash '" AQ_TEST_SOURCE_DIR "/tests/support/s3.sh' start '" + s3_state.string() + "' >/dev/null";
        if (std::system(cmd.c_str()) != 0) throw std::runtime_error("could not start Swift + s3api");
        s3 = aqt::s3_endpoint_from((s3_state / "s3.env").string());
    }
};

// CPU seconds (user + system) of the gateway and, for the s3 store, of Swift's servers over one
// phase: unlike MiB/s these hardly depend on what else the machine runs, so alternatives can be
// compared on a loaded machine.
class cpu_meter {
public:
    cpu_meter(pid_t gateway, const servers& srv) : gateway_(gateway) {
        if (srv.s3_state.empty()) return;
        std::ifstream root_file(srv.s3_state / "root");
        std::string root;
        std::getline(root_file, root);
        std::ifstream in(fs::path(root) / "pids");
        std::string name;
        pid_t pid;
        long long start;
        while (in >> name >> pid >> start)
            if (name != "memcached") swift_.push_back(pid);
    }
    void start() { start_ = now(); }
    void print(const std::string& phase) const {
        auto [gw, swift] = now();
        std::printf("%s: CPU seconds: gateway %.2f", phase.c_str(), gw - start_.first);
        if (!swift_.empty()) std::printf(", Swift %.2f", swift - start_.second);
        std::printf("\n");
    }

private:
    std::pair<double, double> now() const {
        double swift = 0;
        for (pid_t p : swift_) swift += aqt::cpu_seconds(p);
        return {aqt::cpu_seconds(gateway_), swift};
    }
    pid_t gateway_;
    std::vector<pid_t> swift_;
    std::pair<double, double> start_;
};

void run_store(const options& o, const std::string& store, servers& srv, const fs::path& work, const fs::path& batch,
               std::uint64_t lines) {
    const std::uint64_t bytes = o.mib * MiB;
    json::object files{{"enabled", true},
                       {"max_file_bytes", bytes + MiB},
                       {"max_requests_per_file", std::max<std::uint64_t>(lines, 50000)}};
    if (store == "database") {
        srv.need_postgres(work);
        files["store"] = "database";
        files["database"] = srv.pg_url;
    } else if (store == "s3") {
        srv.need_s3(work);
        files["store"] = "s3";
        files["s3"] = json::object{{"endpoint", srv.s3->endpoint},     {"bucket", srv.s3->bucket},
                                   {"region", srv.s3->region},         {"addressing", "path"},
                                   {"access_key", srv.s3->access_key}, {"secret_key", srv.s3->secret_key}};
        for (const auto& [k, v] : o.s3_extra) files["s3"].as_object()[k] = v;
    } else if (store != "filesystem") {
        throw std::runtime_error("unknown store " + store);
    }
    // The per-token limit (32 by default) is raised above wrk's connections: a request counts
    // until its handler has returned, which can be after the client has its answer and sent the
    // next one, so 32 connections of one token at the limit of 32 meet an occasional 429.
    aqt::gateway gw(json::object{{"plugins", json::object{{"files", files}}},
                                 {"max_requests_per_principal", 2 * o.connections}});
    const std::string auth = gw.bearer("alice");
    const long long hwm_idle = aqt::status_kib(gw.pid(), "VmHWM");
    std::optional<aqbench::nginx_server> nginx;
    if (store == "filesystem") nginx.emplace(work / "nginx");

    // Upload.
    double nginx_put = 0;
    if (nginx) {
        auto t = curl({"-T", batch.string(), nginx->url("/dav/batch.jsonl")}, {});
        if (t.status != 201 && t.status != 204) throw std::runtime_error("nginx PUT: " + std::to_string(t.status));
        nginx_put = mib_per_s(bytes, t.seconds);
    }
    cpu_meter cpu(gw.pid(), srv);
    transfer up;
    {
        perf_recording p(o, gw.pid(), store + "-upload");
        cpu.start();
        up = curl({"-H", "Authorization: " + auth, "-F", "purpose=batch", "-F", "file=@" + batch.string(),
                   gw.base_url() + "/v1/files"},
                  work / "upload.json");
        cpu.print(store + " upload");
    }
    if (up.status != 200) throw std::runtime_error(store + " upload: " + std::to_string(up.status) + " " + up.body);
    const std::string id(json::parse(up.body).at("id").as_string());
    const long long hwm_upload = aqt::status_kib(gw.pid(), "VmHWM");

    // Download.
    double nginx_get = 0;
    if (nginx) {
        auto t = curl({nginx->url("/dav/batch.jsonl")}, {});
        if (t.status != 200) throw std::runtime_error("nginx GET: " + std::to_string(t.status));
        nginx_get = mib_per_s(bytes, t.seconds);
    }
    transfer down;
    {
        perf_recording p(o, gw.pid(), store + "-download");
        cpu.start();
        down = curl({"-H", "Authorization: " + auth, gw.base_url() + "/v1/files/" + id + "/content"}, {});
        cpu.print(store + " download");
    }
    if (down.status != 200) throw std::runtime_error(store + " download: " + std::to_string(down.status));
    const long long hwm_download = aqt::status_kib(gw.pid(), "VmHWM");

    // Metadata.
    auto meta = curl({"-H", "Authorization: " + auth, gw.base_url() + "/v1/files/" + id}, work / "meta.json");
    if (meta.status != 200) throw std::runtime_error(store + " metadata: " + std::to_string(meta.status));
    double nginx_static = 0;
    if (nginx) {
        std::ofstream(nginx->root() / "meta.json") << meta.body;
        nginx_static = wrk(o, nginx->url("/meta.json"), auth);
    }
    double gw_meta;
    {
        perf_recording p(o, gw.pid(), store + "-metadata");
        gw_meta = wrk(o, gw.base_url() + "/v1/files/" + id, auth);
    }

    const double up_rate = mib_per_s(bytes, up.seconds), down_rate = mib_per_s(bytes, down.seconds);
    if (nginx) {
        report.push_back({store, "upload", up_rate, "MiB/s", "nginx WebDAV PUT", nginx_put, 0.5});
        report.push_back({store, "download", down_rate, "MiB/s", "nginx sendfile GET", nginx_get, 0.8});
        report.push_back({store, "metadata GET", gw_meta, "req/s", "nginx static JSON", nginx_static, 0.5});
        report.push_back({store, "upload", up_rate, "MiB/s", "write + fsync, same folder",
                          raw_file_write(batch, gw.dir() / "files"), 0});
    } else if (store == "database") {
        report.push_back({store, "upload", up_rate, "MiB/s", "PostgreSQL 1 MiB chunk inserts",
                          raw_database_write(srv.pg_url, batch), 0.8});
        report.push_back({store, "download", down_rate, "MiB/s", "", 0, 0});
        report.push_back({store, "metadata GET", gw_meta, "req/s", "", 0, 0});
    } else {
        aq::s3::client c(*srv.s3);
        {
            // The store's object read straight from Swift, without the gateway: what serving
            // that object costs (a segmented one, with large_objects "multipart"), beside the
            // single-PUT object of the reference below.
            cpu.start();
            std::uint64_t got = 0;
            auto t0 = clock_type::now();
            c.get_object("files/" + id, [&](std::string_view piece) { got += piece.size(); });
            std::printf("s3: direct GET of the store's object: %.0f MiB/s\n", mib_per_s(got, seconds_since(t0)));
            cpu.print("s3 direct GET of the store's object");
        }
        cpu.start();
        auto direct = aqt::s3_client_put_get(c, "files-bench/direct", bytes);
        cpu.print("s3 direct PUT + GET (reference)");
        {
            // Once more, the reference's GET alone: what a plain (single-PUT) object costs Swift to
            // serve, beside the store's object above.
            cpu.start();
            std::uint64_t got = 0;
            auto t0 = clock_type::now();
            c.get_object("files-bench/direct", [&](std::string_view piece) { got += piece.size(); });
            std::printf("s3: direct GET of the reference's object again: %.0f MiB/s\n", mib_per_s(got, seconds_since(t0)));
            cpu.print("s3 direct GET of the reference's object");
        }
        c.delete_object("files-bench/direct");
        report.push_back({store, "upload", up_rate, "MiB/s", "direct S3 PUT, same server", direct.put_mib_s, 0.7});
        report.push_back({store, "download", down_rate, "MiB/s", "direct S3 GET, same server", direct.get_mib_s, 0.7});
        report.push_back({store, "metadata GET", gw_meta, "req/s", "", 0, 0});
    }
    std::printf("%s: gateway VmHWM %lld MiB idle, %lld after upload, %lld after download: growth %.1f MiB "
                "(target <= 64)\n",
                store.c_str(), hwm_idle / 1024, hwm_upload / 1024, hwm_download / 1024,
                static_cast<double>(std::max(hwm_upload, hwm_download) - hwm_idle) / 1024);
    std::fflush(stdout);
    curl({"-X", "DELETE", "-H", "Authorization: " + auth, gw.base_url() + "/v1/files/" + id}, {});
}

void print_report() {
    std::printf("\n| store | figure | gateway | reference | reference value | ratio | target |\n"
                "|---|---|---|---|---|---|---|\n");
    for (const auto& f : report) {
        if (f.reference.empty()) {
            std::printf("| %s | %s | %.0f %s | | | | |\n", f.store.c_str(), f.what.c_str(), f.value, f.unit.c_str());
            continue;
        }
        double ratio = f.value / f.reference_value;
        std::string target = f.target > 0 ? (ratio >= f.target ? ">= " : "MISSED >= ") + std::to_string(f.target).substr(0, 3)
                                          : "";
        std::printf("| %s | %s | %.0f %s | %s | %.0f %s | %.2f | %s |\n", f.store.c_str(), f.what.c_str(), f.value,
                    f.unit.c_str(), f.reference.c_str(), f.reference_value, f.unit.c_str(), ratio, target.c_str());
    }
}

}  // namespace

int main(int argc, char** argv) {
    options o;
    for (int i = 1; i < argc; ++i) {
        std::string a = argv[i];
        auto next = [&]() -> std::string {
            if (i + 1 >= argc) throw std::invalid_argument(a + " needs a value");
            return argv[++i];
        };
        try {
            if (a == "--mib") o.mib = std::stoull(next());
            else if (a == "--line-bytes") o.line_bytes = std::stoul(next());
            else if (a == "--connections") o.connections = std::stoi(next());
            else if (a == "--seconds") o.seconds = std::stoi(next());
            else if (a == "--perf") o.perf_dir = next();
            else if (a == "--s3") o.s3_extra = json::parse(next()).as_object();
            else if (a == "--stores") {
                o.stores.clear();
                std::istringstream in(next());
                for (std::string s; std::getline(in, s, ',');) o.stores.push_back(s);
            } else throw std::invalid_argument("unknown argument " + a);
        } catch (const std::exception& e) {
            std::cerr << "files_bench: " << e.what()
                      << "\nusage: files_bench [--mib N] [--stores filesystem,database,s3] [--line-bytes B] "
                         "[--connections C] [--seconds S] [--perf DIR] [--s3 JSON]\n";
            return 2;
        }
    }
    const fs::path work = fs::temp_directory_path() / ("files-bench-" + aqt::random_hex(4));
    int status = 0;
    try {
        fs::create_directories(work);
        const std::uint64_t lines = o.mib * MiB / o.line_bytes;
        if (lines * o.line_bytes != o.mib * MiB) throw std::runtime_error("--line-bytes must divide the file size");
        const fs::path batch = work / "batch.jsonl";
        write_batch_file(batch, lines, o.line_bytes);
        std::printf("files_bench: %llu MiB batch file, %llu lines of %zu bytes; wrk -t2 -c%d -d%ds; load average %s\n",
                    static_cast<unsigned long long>(o.mib), static_cast<unsigned long long>(lines), o.line_bytes,
                    o.connections, o.seconds, load_average().c_str());
        std::fflush(stdout);
        servers srv;
        for (const auto& store : o.stores) run_store(o, store, srv, work, batch, lines);
        print_report();
        std::printf("load average at the end: %s\n", load_average().c_str());
    } catch (const std::exception& e) {
        std::cerr << "files_bench: " << e.what() << "\n";
        status = 1;
    }
    std::error_code ec;
    fs::remove_all(work, ec);
    return status;
}
