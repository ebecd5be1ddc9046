// host_load: what hostile and slow clients cost the host, measured in one run (a program, not a
// timed test; README "How the host protects itself" has the figures).
//
//   build/tests/load/host_load [--idle 10000] [--uploads 200] [--downloads 200] [--samples 300]
//
// 1. The resident memory of `--idle` idle keep-alive connections (each served one request),
//    as the growth of the gateway's VmRSS divided among them.
// 2. A normal request's latency (retrieve a file's metadata, list files, upload 1 KiB), p50 and
//    p99, without load, while one other token runs `--uploads` uploads trickling a byte a second
//    and `--downloads` downloads that stopped reading (issue 7, point 1), and without load again;
//    printed with the ratio of the loaded figure to the mean of the two unloaded ones. The slow token's per-principal limit is raised so that all of its
//    requests are admitted: the ratio shows what the mechanism costs, not what the limit hides.
//
// The gateway runs the files plugin on SQLite (a fresh temp dir). The program raises its own
// RLIMIT_NOFILE for the idle connections.
#include "support/gateway.hpp"
#include "support/http_client.hpp"
#include "support/multipart.hpp"
#include "support/process_stats.hpp"
#include "support/raw_connection.hpp"
#include "support/slow_clients.hpp"

#include <boost/json.hpp>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <iostream>
#include <memory>
#include <random>
#include <string>
#include <thread>
#include <vector>

namespace json = boost::json;
using namespace std::chrono_literals;
using clock_type = std::chrono::steady_clock;

namespace {

struct options {
    int idle = 10000;
    int uploads = 200;
    int downloads = 200;
    int samples = 300;
};

options parse(int argc, char** argv) {
    options o;
    for (int i = 1; i < argc; ++i) {
        std::string a = argv[i];
        auto next = [&]() -> int {
            if (i + 1 >= argc) throw std::runtime_error(a + " needs a value");
            return std::stoi(argv[++i]);
        };
        if (a == "--idle") o.idle = next();
        else if (a == "--uploads") o.uploads = next();
        else if (a == "--downloads") o.downloads = next();
        else if (a == "--samples") o.samples = next();
        else throw std::runtime_error("unknown argument " + a +
                                      " (use --idle N --uploads N --downloads N --samples N)");
    }
    return o;
}

std::string upload(aqt::http::client& c, const std::string& content, const std::string& name) {
    aqt::multipart form;
    form.field("purpose", "user_data").file("file", name, content);
    auto r = c.request("POST", "/v1/files", {{"Content-Type", form.content_type()}}, form.body());
    if (r.status != 200) throw std::runtime_error("upload failed: " + std::to_string(r.status) + " " + r.body);
    return std::string(r.json().at("id").as_string());
}

struct latency {
    double p50 = 0, p99 = 0;
    int failures = 0;
};

double percentile(std::vector<double> v, double p) {
    std::sort(v.begin(), v.end());
    return v[static_cast<std::size_t>(p * static_cast<double>(v.size() - 1))];
}

// `samples` rounds of retrieve, list and a 1 KiB upload; latency of each request.
latency measure(aqt::http::client& c, const std::string& file_id, int samples) {
    std::vector<double> ms;
    latency out;
    aqt::multipart form;
    form.field("purpose", "user_data").file("file", "small.txt", std::string(1024, 's'));
    for (int i = 0; i < samples; ++i) {
        for (int kind = 0; kind < 3; ++kind) {
            const auto start = clock_type::now();
            aqt::http::response r;
            if (kind == 0) r = c.get("/v1/files/" + file_id);
            else if (kind == 1) r = c.get("/v1/files?limit=20");
            else r = c.request("POST", "/v1/files", {{"Content-Type", form.content_type()}}, form.body());
            ms.push_back(std::chrono::duration<double, std::milli>(clock_type::now() - start).count());
            if (r.status != 200) ++out.failures;
        }
    }
    out.p50 = percentile(ms, 0.5);
    out.p99 = percentile(ms, 0.99);
    return out;
}

}  // namespace

int main(int argc, char** argv) try {
    const options o = parse(argc, argv);
    const std::uint64_t fds = aqt::raise_open_file_limit(static_cast<std::uint64_t>(o.idle + o.uploads + o.downloads + 2000));
    if (fds < static_cast<std::uint64_t>(o.idle + 500)) throw std::runtime_error("cannot raise RLIMIT_NOFILE enough");

    aqt::gateway gw(json::object{
        {"max_connections", o.idle + o.uploads + o.downloads + 1000},
        {"max_requests_per_principal", o.uploads + o.downloads + 100},
        {"min_body_rate_bytes_per_s", 0},  // the slow clients stay for the whole measurement
        {"idle_timeout_ms", 600000},
        {"plugins", {{"files", {{"enabled", true}, {"purposes", json::array{"batch", "user_data"}}}}}}});
    std::printf("aqueductd pid %d, port %u\n", static_cast<int>(gw.pid()), gw.port());

    // ---- 1. idle connections ----------------------------------------------------------------
    std::vector<std::unique_ptr<aqt::raw::connection>> idle;
    auto open_served = [&](int n) {
        for (int i = 0; i < n; ++i) {
            auto conn = std::make_unique<aqt::raw::connection>(gw.port());
            if (!conn->send("GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n") ||
                conn->read_response(10s).how != aqt::raw::ending::data)
                throw std::runtime_error("idle connection " + std::to_string(i) + " was not served");
            idle.push_back(std::move(conn));
        }
    };
    open_served(200);  // warm-up: allocator arenas and caches
    std::this_thread::sleep_for(500ms);
    const auto rss_before = aqt::resident_bytes(gw.pid());
    const auto open_start = clock_type::now();
    open_served(o.idle);
    const double open_s = std::chrono::duration<double>(clock_type::now() - open_start).count();
    std::this_thread::sleep_for(500ms);
    const auto rss_after = aqt::resident_bytes(gw.pid());
    const double per_conn = (static_cast<double>(rss_after) - static_cast<double>(rss_before)) / o.idle;
    std::printf("\nidle keep-alive connections: %d (opened and served in %.1f s)\n", o.idle, open_s);
    std::printf("  gateway RSS %.1f MiB -> %.1f MiB: %.0f bytes per idle connection (limit 8192)\n",
                rss_before / 1048576.0, rss_after / 1048576.0, per_conn);
    idle.clear();
    std::this_thread::sleep_for(500ms);

    // ---- 2. latency under the slow-client load ----------------------------------------------
    aqt::http::client alice(gw.port(), 60s);
    alice.default_headers["Authorization"] = gw.bearer("alice");
    std::string big(4 << 20, '\0');
    std::mt19937 gen(11);
    for (auto& c : big) c = static_cast<char>(gen());
    const std::string big_id = upload(alice, big, "big.bin");

    aqt::http::client bob(gw.port(), 30s);
    bob.default_headers["Authorization"] = gw.bearer("bob");
    const std::string bob_file = upload(bob, "{\"x\":1}\n", "mine.jsonl");
    measure(bob, bob_file, 20);  // warm-up
    const latency base = measure(bob, bob_file, o.samples);

    const auto rss_unloaded = aqt::resident_bytes(gw.pid());
    auto load = std::make_unique<aqt::slow_clients>(gw.port(), gw.bearer("alice"), "/v1/files/" + big_id + "/content",
                                                    o.uploads, o.downloads);
    std::this_thread::sleep_for(1s);
    // What holding the slow clients costs by itself: CPU over a quiet stretch.
    const double cpu_before = aqt::cpu_seconds(gw.pid());
    std::this_thread::sleep_for(3s);
    const double hold_cpu = (aqt::cpu_seconds(gw.pid()) - cpu_before) / 3.0;
    const auto rss_loaded = aqt::resident_bytes(gw.pid());
    const latency loaded = measure(bob, bob_file, o.samples);
    const int downloads_started = load->downloads_started(), uploads_pending = load->uploads_pending();
    load.reset();
    std::this_thread::sleep_for(1s);
    // Measured again without the load, so that the ratio is not an artefact of the order.
    const latency after = measure(bob, bob_file, o.samples);
    const double base_p50 = (base.p50 + after.p50) / 2, base_p99 = (base.p99 + after.p99) / 2;

    std::printf("\nnormal requests of another token (retrieve, list, 1 KiB upload; %d of each)\n", o.samples);
    std::printf("  without load, before:  p50 %7.2f ms   p99 %7.2f ms   failures %d\n", base.p50, base.p99, base.failures);
    std::printf("  with the slow load:     p50 %7.2f ms   p99 %7.2f ms   failures %d   (%d trickling uploads, %d "
                "stalled downloads)\n",
                loaded.p50, loaded.p99, loaded.failures, o.uploads, o.downloads);
    std::printf("  without load, after:    p50 %7.2f ms   p99 %7.2f ms   failures %d\n", after.p50, after.p99,
                after.failures);
    std::printf("  ratio with / without (mean of before and after): p50 %.2f   p99 %.2f\n", loaded.p50 / base_p50,
                loaded.p99 / base_p99);
    std::printf("  slow load: %d of %d downloads started, %d of %d uploads still pending\n", downloads_started,
                o.downloads, uploads_pending, o.uploads);
    std::printf("  holding it: gateway RSS %.1f MiB -> %.1f MiB (%.0f KiB per slow client), CPU %.1f%% of a core\n",
                rss_unloaded / 1048576.0, rss_loaded / 1048576.0,
                (static_cast<double>(rss_loaded) - static_cast<double>(rss_unloaded)) / (o.uploads + o.downloads) / 1024.0,
                hold_cpu * 100.0);
    return base.failures + loaded.failures + after.failures == 0 ? 0 : 1;
} catch (const std::exception& e) {
    std::fprintf(stderr, "host_load: %s\n", e.what());
    return 2;
}
