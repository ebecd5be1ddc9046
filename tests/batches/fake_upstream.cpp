#include "fake_upstream.hpp"

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/json.hpp>

#include <sys/socket.h>

#include <atomic>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <random>
#include <set>
#include <sstream>
#include <thread>
#include <vector>

namespace aqt {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace json = boost::json;
using tcp = net::ip::tcp;

struct fake_upstream::impl {
    net::io_context io;
    std::unique_ptr<net::ssl::context> tls;
    tcp::acceptor acceptor{io};
    unsigned short port = 0;
    std::thread accept_thread;

    mutable std::mutex mu;
    std::condition_variable stop_cv;
    bool stopping = false;
    std::vector<std::thread> sessions;
    std::set<std::shared_ptr<tcp::socket>> sockets;

    std::chrono::milliseconds latency{0};
    double error_rate = 0;
    int error_status = 500;
    int overload_max_active = 0;                  // 0: no limit
    std::chrono::milliseconds latency_per_active{0};
    long long overload_refusals = 0;
    // A rate limit: more than rate_max accepted requests within rate_window -> 429.
    int rate_max = 0;                             // 0: no limit
    std::chrono::milliseconds rate_window{0};
    double rate_retry_after_s = 1;
    std::deque<std::chrono::steady_clock::time_point> accepted;  // within the window
    long long rate_refusals = 0;
    std::map<std::string, fake_rule> rules;
    std::string api_key;
    std::map<std::string, int> counts;
    std::map<std::string, std::vector<std::string>> request_ids;  // x-request-id received, per key
    std::map<std::string, std::vector<std::string>> bodies;       // keep_bodies: raw bodies, per key
    bool keep_bodies = false;
    bool held = false;
    std::string name;
    std::vector<std::string> order;
    std::vector<double> times;
    std::chrono::steady_clock::time_point started = std::chrono::steady_clock::now();
    long long total = 0;
    int active = 0, max_active = 0;
    // The path before /v1 of base_url(), random per instance: a request some other test's
    // gateway sends to a port this instance reuses (that test's upstream stopped, its
    // gateway retries) is answered 404 and not counted, instead of turning up in this test's
    // counts (seen once: a line of another suite running at the same time).
    std::string prefix;
    std::mt19937 rng{12345};

    impl(unsigned short p, const std::string& cert, const std::string& key) {
        if (!cert.empty()) {
            tls = std::make_unique<net::ssl::context>(net::ssl::context::tls_server);
            tls->use_certificate_chain(net::buffer(cert));
            tls->use_private_key(net::buffer(key), net::ssl::context::pem);
        }
        tcp::endpoint ep(net::ip::make_address("127.0.0.1"), p);
        acceptor.open(ep.protocol());
        acceptor.set_option(net::socket_base::reuse_address(true));
        acceptor.bind(ep);
        acceptor.listen(1024);
        port = acceptor.local_endpoint().port();
        std::random_device rd;
        prefix = "/fake-" + std::to_string(rd() % 1000000000u);
        accept_thread = std::thread([this] { accept_loop(); });
    }

    ~impl() { stop(); }

    // Closes the listener and every connection, wakes held and sleeping requests; idempotent.
    void stop() {
        {
            std::lock_guard lock(mu);
            if (stopping) return;
            stopping = true;
            for (auto& s : sockets) {
                boost::system::error_code ec;
                s->shutdown(tcp::socket::shutdown_both, ec);
            }
        }
        stop_cv.notify_all();
        ::shutdown(acceptor.native_handle(), SHUT_RDWR);
        accept_thread.join();
        std::vector<std::thread> all;
        {
            std::lock_guard lock(mu);
            all.swap(sessions);
        }
        for (auto& t : all) t.join();
        boost::system::error_code ec;
        acceptor.close(ec);
    }

    void accept_loop() {
        for (;;) {
            auto sock = std::make_shared<tcp::socket>(io);
            boost::system::error_code ec;
            acceptor.accept(*sock, ec);
            std::lock_guard lock(mu);
            if (stopping) return;
            if (ec) continue;
            sock->set_option(tcp::no_delay(true), ec);
            sockets.insert(sock);
            sessions.emplace_back([this, sock] {
                if (tls) {
                    net::ssl::stream<tcp::socket&> stream(*sock, *tls);
                    boost::system::error_code hec;
                    stream.handshake(net::ssl::stream_base::server, hec);
                    if (!hec) session(stream);
                } else {
                    session(*sock);
                }
                std::lock_guard l(mu);
                sockets.erase(sock);
            });
        }
    }

    // Waits while held; false when the server stopped.
    bool wait_released() {
        std::unique_lock lock(mu);
        stop_cv.wait(lock, [this] { return stopping || !held; });
        return !stopping;
    }

    // Sleeps unless the server stops first; false when it stopped.
    bool sleep(std::chrono::milliseconds d) {
        std::unique_lock lock(mu);
        return !stop_cv.wait_for(lock, d, [this] { return stopping; });
    }

    static std::string key_of(const json::object& body) {
        if (auto* u = body.if_contains("user"); u && u->is_string()) return std::string(u->as_string());
        if (auto* m = body.if_contains("messages"); m && m->is_array() && !m->as_array().empty()) {
            const auto& first = m->as_array().front();
            if (first.is_object())
                if (auto* c = first.as_object().if_contains("content"); c && c->is_string())
                    return std::string(c->as_string());
        }
        for (const char* k : {"prompt", "input"})
            if (auto* v = body.if_contains(k); v && v->is_string()) return std::string(v->as_string());
        return "";
    }

    template <class Stream, class Body>
    static void write(Stream& s, http::response<Body>& res, boost::system::error_code& ec) {
        res.prepare_payload();
        http::write(s, res, ec);
    }

    template <class Stream>
    void session(Stream& sock) {
        beast::flat_buffer buf;
        for (;;) {
            http::request<http::string_body> req;
            boost::system::error_code ec;
            http::read(sock, buf, req, ec);
            if (ec) return;
            http::response<http::string_body> res{http::status::ok, req.version()};
            res.set(http::field::content_type, "application/json");
            res.keep_alive(req.keep_alive());
            std::string target(req.target());
            if (req.method() == http::verb::get && target == "/_counts") {
                json::object c;
                {
                    std::lock_guard lock(mu);
                    for (auto& [k, n] : counts) c[k] = n;
                    res.body() = json::serialize(json::object{{"total", total}, {"counts", c},
                                                              {"max_active", max_active},
                                                              {"overload_refusals", overload_refusals},
                                                              {"rate_refusals", rate_refusals}});
                }
            } else if (req.method() == http::verb::post && target == "/_reset") {
                std::lock_guard lock(mu);
                counts.clear();
                order.clear();
                times.clear();
                total = 0;
                max_active = 0;
                overload_refusals = 0;
                rate_refusals = 0;
                res.body() = "{}";
            } else if (req.method() == http::verb::post && target == "/_config") {
                if (!configure(req.body())) res.result(http::status::bad_request);
                res.body() = "{}";
            } else if (req.method() == http::verb::post && api_path(target)) {
                if (!serve_api(sock, req, res)) return;  // the behaviour closed the connection
            } else {
                res.result(http::status::not_found);
                res.body() = R"({"error":{"message":"not found","type":"invalid_request_error","param":null,"code":null}})";
            }
            write(sock, res, ec);
            if (ec || !req.keep_alive()) return;
        }
    }

    // An API route under this instance's prefix (see base_url()).
    bool api_path(std::string_view target) const {
        std::string p;
        {
            std::lock_guard lock(mu);
            p = prefix;
        }
        if (!target.starts_with(p)) return false;
        target.remove_prefix(p.size());
        return target == "/v1/chat/completions" || target == "/v1/completions" || target == "/v1/embeddings" ||
               target == "/v1/responses";
    }

    bool configure(const std::string& text) {
        boost::system::error_code ec;
        json::value v = json::parse(text, ec);
        if (ec || !v.is_object()) return false;
        const auto& o = v.as_object();
        std::lock_guard lock(mu);
        if (auto* l = o.if_contains("latency_ms")) latency = std::chrono::milliseconds(json::value_to<long long>(*l));
        if (auto* r = o.if_contains("error_rate")) error_rate = json::value_to<double>(*r);
        if (auto* m = o.if_contains("overload_max_active")) overload_max_active = json::value_to<int>(*m);
        if (auto* m = o.if_contains("rate_max")) rate_max = json::value_to<int>(*m);
        if (auto* m = o.if_contains("rate_window_ms"))
            rate_window = std::chrono::milliseconds(json::value_to<long long>(*m));
        if (auto* m = o.if_contains("latency_per_active_ms"))
            latency_per_active = std::chrono::milliseconds(json::value_to<long long>(*m));
        if (auto* r = o.if_contains("rules"); r && r->is_object()) {
            rules.clear();
            for (const auto& [k, rv] : r->as_object()) {
                fake_rule rule;
                const auto& ro = rv.as_object();
                if (auto* x = ro.if_contains("mode")) rule.mode = json::value_to<std::string>(*x);
                if (auto* x = ro.if_contains("status")) rule.status = json::value_to<int>(*x);
                if (auto* x = ro.if_contains("times")) rule.times = json::value_to<int>(*x);
                if (auto* x = ro.if_contains("retry_after")) {
                    if (x->is_string()) rule.retry_after_text = json::value_to<std::string>(*x);
                    else rule.retry_after_s = json::value_to<double>(*x);
                }
                rules[std::string(k)] = rule;
            }
        }
        return true;
    }

    // Answers an API request in `res`; false when the behaviour already ended the connection.
    template <class Stream>
    bool serve_api(Stream& sock, const http::request<http::string_body>& req,
                   http::response<http::string_body>& res) {
        boost::system::error_code ec;
        json::value body = json::parse(req.body(), ec);
        if (ec || !body.is_object()) {
            res.result(http::status::bad_request);
            res.body() = R"({"error":{"message":"body is not a JSON object","type":"invalid_request_error","param":null,"code":null}})";
            return true;
        }
        {
            std::lock_guard lock(mu);
            if (!api_key.empty() && req[http::field::authorization] != "Bearer " + api_key) {
                res.result(http::status::unauthorized);
                res.body() = R"({"error":{"message":"bad api key","type":"authentication_error","param":null,"code":null}})";
                return true;
            }
        }
        std::string key = key_of(body.as_object());
        std::string model;
        if (auto* m = body.as_object().if_contains("model"); m && m->is_string()) model = std::string(m->as_string());
        fake_rule rule;
        bool apply = false, random_error = false;
        std::chrono::milliseconds delay;
        int n = 0;
        {
            std::lock_guard lock(mu);
            n = ++counts[key];
            ++total;
            if (order.size() < 1000000) {
                request_ids[key].emplace_back(req["x-request-id"]);
                if (keep_bodies) bodies[key].push_back(req.body());
                order.push_back(key);
                times.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count());
            }
            if (rate_max > 0) {
                auto now = std::chrono::steady_clock::now();
                while (!accepted.empty() && now - accepted.front() >= rate_window) accepted.pop_front();
                if (static_cast<int>(accepted.size()) >= rate_max) {
                    ++rate_refusals;
                    res.result(http::status::too_many_requests);
                    std::ostringstream ra;
                    ra << rate_retry_after_s;
                    res.set(http::field::retry_after, ra.str());
                    res.body() = json::serialize(json::object{
                        {"error", {{"message", "rate limit: " + std::to_string(rate_max) + " requests per " +
                                                   std::to_string(rate_window.count()) + " ms"},
                                   {"type", "rate_limit_error"},
                                   {"param", nullptr},
                                   {"code", nullptr}}}});
                    return true;
                }
                accepted.push_back(now);
            }
            if (overload_max_active > 0 && active >= overload_max_active) {
                ++overload_refusals;
                res.result(http::status::service_unavailable);
                res.body() = json::serialize(json::object{
                    {"error", {{"message", "overloaded: " + std::to_string(active) + " requests being served"},
                               {"type", "server_error"},
                               {"param", nullptr},
                               {"code", nullptr}}}});
                return true;
            }
            max_active = std::max(max_active, ++active);
            delay = latency + latency_per_active * active;
            if (auto it = rules.find(key); it != rules.end() && (it->second.times < 0 || n <= it->second.times)) {
                rule = it->second;
                apply = true;
            } else if (error_rate > 0 && std::uniform_real_distribution<double>(0, 1)(rng) < error_rate) {
                random_error = true;
                rule.status = error_status;
            }
        }
        struct done_guard {
            impl* self;
            ~done_guard() {
                std::lock_guard lock(self->mu);
                --self->active;
            }
        } guard{this};
        if (!wait_released()) return false;
        if (delay.count() > 0 && !sleep(delay)) return false;
        std::string prefix;
        {
            std::lock_guard lock(mu);
            prefix = name.empty() ? "req_" : "req_" + name + "_";
        }
        res.set("x-request-id", prefix + key + "_" + std::to_string(n));
        if (apply && rule.mode == "hang") {
            sleep(std::chrono::hours(1));
            return false;
        }
        if (apply && rule.mode == "close") {
            std::string partial = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 400\r\n\r\n{\"id\":\"chat";
            net::write(sock, net::buffer(partial), ec);
            beast::get_lowest_layer(sock).shutdown(tcp::socket::shutdown_both, ec);
            return false;
        }
        if (apply && rule.mode == "garbage_http") {
            std::string garbage = "SSH-2.0-NotHTTP\r\n\r\n\x01\x02garbage";
            net::write(sock, net::buffer(garbage), ec);
            beast::get_lowest_layer(sock).shutdown(tcp::socket::shutdown_both, ec);
            return false;
        }
        if (apply && rule.mode == "garbage") {
            res.body() = "this is not json {";
            return true;
        }
        if (apply || random_error) {
            res.result(static_cast<http::status>(rule.status));
            if (!rule.retry_after_text.empty()) {
                res.set(http::field::retry_after, rule.retry_after_text);
            } else if (rule.retry_after_s >= 0) {
                std::ostringstream s;
                s << rule.retry_after_s;
                res.set(http::field::retry_after, s.str());
            }
            res.body() = json::serialize(json::object{
                {"error", {{"message", "injected " + std::to_string(rule.status) + " for " + key},
                           {"type", rule.status == 429 ? "rate_limit_error" : "server_error"},
                           {"param", nullptr},
                           {"code", nullptr}}}});
            return true;
        }
        res.body() = success_body(key, model);
        return true;
    }
};

fake_upstream::fake_upstream(unsigned short port) : impl_(std::make_unique<impl>(port, "", "")) {}
fake_upstream::fake_upstream(unsigned short port, const std::string& cert_pem, const std::string& key_pem)
    : impl_(std::make_unique<impl>(port, cert_pem, key_pem)) {}
fake_upstream::~fake_upstream() = default;

unsigned short fake_upstream::port() const noexcept { return impl_->port; }
void fake_upstream::clear_path_prefix() {
    std::lock_guard lock(impl_->mu);
    impl_->prefix.clear();
}
std::string fake_upstream::base_url() const {
    return (impl_->tls ? "https://127.0.0.1:" : "http://127.0.0.1:") + std::to_string(impl_->port) + impl_->prefix +
           "/v1";
}

void fake_upstream::set_latency(std::chrono::milliseconds latency) {
    std::lock_guard lock(impl_->mu);
    impl_->latency = latency;
}
void fake_upstream::set_overload(int max_active, std::chrono::milliseconds per_active) {
    std::lock_guard lock(impl_->mu);
    impl_->overload_max_active = max_active;
    impl_->latency_per_active = per_active;
}

void fake_upstream::set_rate_limit(int max_requests, std::chrono::milliseconds window, double retry_after_s) {
    std::lock_guard lock(impl_->mu);
    impl_->rate_max = max_requests;
    impl_->rate_window = window;
    impl_->rate_retry_after_s = retry_after_s;
    impl_->accepted.clear();
}

long long fake_upstream::rate_refusals() const {
    std::lock_guard lock(impl_->mu);
    return impl_->rate_refusals;
}

int fake_upstream::max_arrivals_within(std::chrono::milliseconds window) const {
    std::lock_guard lock(impl_->mu);
    const auto& t = impl_->times;  // in arrival order
    const double w = std::chrono::duration<double>(window).count();
    int most = 0;
    for (std::size_t i = 0, j = 0; j < t.size(); ++j) {
        while (t[j] - t[i] >= w) ++i;
        most = std::max(most, static_cast<int>(j - i + 1));
    }
    return most;
}

long long fake_upstream::overload_refusals() const {
    std::lock_guard lock(impl_->mu);
    return impl_->overload_refusals;
}

void fake_upstream::set_error_rate(double rate, int status) {
    std::lock_guard lock(impl_->mu);
    impl_->error_rate = rate;
    impl_->error_status = status;
}
void fake_upstream::set_rule(const std::string& key, fake_rule rule) {
    std::lock_guard lock(impl_->mu);
    impl_->rules[key] = std::move(rule);
}
void fake_upstream::require_api_key(const std::string& key) {
    std::lock_guard lock(impl_->mu);
    impl_->api_key = key;
}
void fake_upstream::stop() { impl_->stop(); }
void fake_upstream::set_name(const std::string& name) {
    std::lock_guard lock(impl_->mu);
    impl_->name = name;
}
void fake_upstream::set_held(bool held) {
    {
        std::lock_guard lock(impl_->mu);
        impl_->held = held;
    }
    impl_->stop_cv.notify_all();
}
void fake_upstream::keep_bodies(bool keep) {
    std::lock_guard lock(impl_->mu);
    impl_->keep_bodies = keep;
}
std::vector<std::string> fake_upstream::bodies(const std::string& key) const {
    std::lock_guard lock(impl_->mu);
    auto it = impl_->bodies.find(key);
    return it == impl_->bodies.end() ? std::vector<std::string>{} : it->second;
}
void fake_upstream::clear_rules() {
    std::lock_guard lock(impl_->mu);
    impl_->rules.clear();
}
void fake_upstream::reset_counts() {
    std::lock_guard lock(impl_->mu);
    impl_->counts.clear();
    impl_->request_ids.clear();
    impl_->bodies.clear();
    impl_->order.clear();
    impl_->times.clear();
    impl_->total = 0;
    impl_->max_active = 0;
    impl_->overload_refusals = 0;
    impl_->rate_refusals = 0;
    impl_->accepted.clear();
}
std::vector<std::string> fake_upstream::request_ids(const std::string& key) const {
    std::lock_guard lock(impl_->mu);
    auto it = impl_->request_ids.find(key);
    return it == impl_->request_ids.end() ? std::vector<std::string>{} : it->second;
}
std::map<std::string, int> fake_upstream::counts() const {
    std::lock_guard lock(impl_->mu);
    return impl_->counts;
}
int fake_upstream::count(const std::string& key) const {
    std::lock_guard lock(impl_->mu);
    auto it = impl_->counts.find(key);
    return it == impl_->counts.end() ? 0 : it->second;
}
std::vector<std::string> fake_upstream::order() const {
    std::lock_guard lock(impl_->mu);
    return impl_->order;
}
double fake_upstream::now() const {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - impl_->started).count();
}
std::vector<double> fake_upstream::arrival_times() const {
    std::lock_guard lock(impl_->mu);
    return impl_->times;
}
long long fake_upstream::total() const {
    std::lock_guard lock(impl_->mu);
    return impl_->total;
}
int fake_upstream::active() const {
    std::lock_guard lock(impl_->mu);
    return impl_->active;
}
int fake_upstream::max_active() const {
    std::lock_guard lock(impl_->mu);
    return impl_->max_active;
}

std::string fake_upstream::success_body(const std::string& key, const std::string& model) {
    json::object message{{"role", "assistant"}, {"content", "echo " + key}};
    json::object choice{{"index", 0}, {"message", message}, {"finish_reason", "stop"}};
    json::object usage{{"prompt_tokens", 10},
                       {"completion_tokens", 5},
                       {"total_tokens", 15},
                       {"prompt_tokens_details", {{"cached_tokens", 2}}},
                       {"completion_tokens_details", {{"reasoning_tokens", 1}}}};
    json::object body{{"id", "chatcmpl-" + key}, {"object", "chat.completion"}, {"created", 1700000000},
                      {"model", model}, {"choices", json::array{choice}}, {"usage", usage}};
    return json::serialize(body);
}

}  // namespace aqt
