// s3_raw_bench: direct PUT and GET of N MiB to the throwaway Swift + s3api server, through
// aq::s3::client (one streamed PUT; object_writer's signed multipart) and through curl
// --aws-sigv4, all in the same run, printing MiB/s per run and the medians. These are the
// references the S3 content store's figures are compared with (issue 9: store upload and
// download >= 0.7x a direct PUT/GET of the same bytes to the same server).
//
//   build-dir/tests/s3/s3_raw_bench [--mib 256] [--runs 3] [--parts-in-flight 2] [--part-mib 8]
//                                   [--unsigned-parts]
//
// The server is started with tests/support/s3.sh into build-dir/bench-s3 and stopped at the end.
// A program, not a test: figures depend on the machine and its load.
#include "aqt_build_paths.h"
#include "support/s3.hpp"
#include "support/s3_reference.hpp"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <iostream>
#include <string>
#include <vector>

namespace {

double median(std::vector<double> v) {
    std::sort(v.begin(), v.end());
    return v[v.size() / 2];
}

}  // namespace

int main(int argc, char** argv) {
    std::uint64_t mib = 256;
    int runs = 3;
    std::size_t in_flight = aq::s3::client_config{}.parts_in_flight;
    std::size_t part_mib = aq::s3::client_config{}.part_size >> 20;
    bool sign = true;
    for (int i = 1; i < argc; ++i) {
        std::string a = argv[i];
        if (a == "--mib" && i + 1 < argc) mib = std::stoull(argv[++i]);
        else if (a == "--runs" && i + 1 < argc) runs = std::max(1, std::atoi(argv[++i]));
        else if (a == "--parts-in-flight" && i + 1 < argc) in_flight = std::stoul(argv[++i]);
        else if (a == "--part-mib" && i + 1 < argc) part_mib = std::stoul(argv[++i]);
        else if (a == "--unsigned-parts") sign = false;
        else {
            std::cerr << "usage: s3_raw_bench [--mib N] [--runs R] [--parts-in-flight N] [--part-mib N] "
                         "[--unsigned-parts]\n";
            return 2;
        }
    }
    const std::string state = std::string(AQ_TEST_BINARY_DIR) + "/bench-s3";
    const std::string script = std::string(AQ_TEST_SOURCE_DIR) + "/tests/support/s3.sh";
    if (std::system(("bash '" + script + "' start '" + state + "' >/dev/null").c_str()) != 0) {
        std::cerr << "s3_raw_bench: could not start the S3 server\n";
        return 1;
    }
    int status = 0;
    std::string file = state + "/payload.bin";
    try {
        aq::s3::client_config cfg = aqt::s3_endpoint_from(state + "/s3.env");
        cfg.parts_in_flight = in_flight;
        cfg.part_size = part_mib << 20;
        cfg.signing = sign ? aq::s3::payload_signing::always : aq::s3::payload_signing::never;
        aq::s3::client c(cfg);
        aqt::s3_reference_file(file, mib << 20);
        std::printf("%llu MiB to Swift s3api on %s, %d runs (MiB/s); writer: %zu MiB parts, %zu in flight, %s\n",
                    static_cast<unsigned long long>(mib), cfg.endpoint.c_str(), runs, part_mib, in_flight,
                    sign ? "signed" : "unsigned");
        std::printf("%-4s %12s %12s %16s %10s %10s\n", "run", "client PUT", "client GET", "writer multipart",
                    "curl PUT", "curl GET");
        std::vector<double> cput, cget, wput, uput, uget;
        for (int r = 1; r <= runs; ++r) {
            auto direct = aqt::s3_client_put_get(c, "bench/direct", mib << 20);
            double writer = aqt::s3_writer_put(c, "bench/writer", mib << 20);
            auto curl = aqt::s3_curl_put_get(cfg, "bench/curl", file);
            for (const char* k : {"bench/direct", "bench/writer", "bench/curl"}) c.delete_object(k);
            cput.push_back(direct.put_mib_s);
            cget.push_back(direct.get_mib_s);
            wput.push_back(writer);
            uput.push_back(curl.put_mib_s);
            uget.push_back(curl.get_mib_s);
            std::printf("%-4d %12.0f %12.0f %16.0f %10.0f %10.0f\n", r, direct.put_mib_s, direct.get_mib_s, writer,
                        curl.put_mib_s, curl.get_mib_s);
        }
        std::printf("%-4s %12.0f %12.0f %16.0f %10.0f %10.0f\n", "med", median(cput), median(cget), median(wput),
                    median(uput), median(uget));
        std::printf("client/curl: PUT %.2f, GET %.2f; writer/client PUT %.2f\n", median(cput) / median(uput),
                    median(cget) / median(uget), median(wput) / median(cput));
    } catch (const std::exception& e) {
        std::cerr << "s3_raw_bench: " << e.what() << "\n";
        status = 1;
    }
    std::filesystem::remove(file);
    std::system(("bash '" + script + "' stop '" + state + "' >/dev/null").c_str());
    return status;
}
