#include "sql/pool.hpp"

#include <soci/postgresql/soci-postgresql.h>
#include <soci/sqlite3/soci-sqlite3.h>

#include <aqueduct/plugin.hpp>

#include <stdexcept>
#include <string>

namespace aq::sql {
namespace {

// URL parts: '+' is a plus here, not a space.
std::string percent_decode(std::string_view in) { return aq::percent_decode(in, false); }

// libpq keyword=value syntax: single-quoted, with ' and \ escaped by a backslash.
std::string libpq_value(std::string_view v) {
    std::string out = "'";
    for (char c : v) {
        if (c == '\'' || c == '\\') out.push_back('\\');
        out.push_back(c);
    }
    out.push_back('\'');
    return out;
}

target parse_postgresql(std::string_view rest) {
    // rest = [user[:password]@]host[:port][/dbname][?key=value&...]
    std::string out;
    auto add = [&](std::string_view key, std::string_view value) {
        if (value.empty()) return;
        if (!out.empty()) out.push_back(' ');
        out.append(key).push_back('=');
        out += libpq_value(value);
    };
    std::string_view query;
    if (auto q = rest.find('?'); q != std::string_view::npos) {
        query = rest.substr(q + 1);
        rest = rest.substr(0, q);
    }
    std::string_view dbname;
    if (auto slash = rest.find('/'); slash != std::string_view::npos) {
        dbname = rest.substr(slash + 1);
        rest = rest.substr(0, slash);
    }
    if (auto at = rest.rfind('@'); at != std::string_view::npos) {
        std::string_view userinfo = rest.substr(0, at);
        rest = rest.substr(at + 1);
        auto colon = userinfo.find(':');
        add("user", percent_decode(userinfo.substr(0, colon)));
        if (colon != std::string_view::npos) add("password", percent_decode(userinfo.substr(colon + 1)));
    }
    std::string_view host = rest, port;
    if (!rest.empty() && rest.front() == '[') {  // [ipv6]:port
        auto close = rest.find(']');
        if (close == std::string_view::npos) throw std::invalid_argument("database URL: unterminated [ in host");
        host = rest.substr(1, close - 1);
        if (close + 1 < rest.size() && rest[close + 1] == ':') port = rest.substr(close + 2);
    } else if (auto colon = rest.rfind(':'); colon != std::string_view::npos) {
        host = rest.substr(0, colon);
        port = rest.substr(colon + 1);
    }
    if (host.empty()) throw std::invalid_argument("database URL: PostgreSQL URL has no host");
    for (char c : port)
        if (c < '0' || c > '9') throw std::invalid_argument("database URL: port is not a number");
    add("host", percent_decode(host));
    add("port", port);
    add("dbname", percent_decode(dbname));
    // Server NOTICEs ("relation already exists, skipping" from idempotent DDL) would otherwise be
    // printed by libpq to stderr, outside the log. A URL's own ?options= comes later and wins.
    add("options", "-c client_min_messages=warning");
    while (!query.empty()) {
        auto amp = query.find('&');
        std::string_view pair = query.substr(0, amp);
        query = amp == std::string_view::npos ? std::string_view() : query.substr(amp + 1);
        auto eq = pair.find('=');
        if (eq == std::string_view::npos || eq == 0)
            throw std::invalid_argument("database URL: query parameters must be key=value");
        std::string key = percent_decode(pair.substr(0, eq));
        for (char c : key)
            if (!(c == '_' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')))
                throw std::invalid_argument("database URL: invalid parameter name");
        add(key, percent_decode(pair.substr(eq + 1)));
    }
    return {backend::postgresql, out, {}};
}

// SOCI's sqlite3 backend reads "db=... timeout=..." and accepts a quoted value.
std::string sqlite_connect_string(std::string_view path) {
    if (path.find('"') != std::string_view::npos)
        throw std::invalid_argument("database URL: SQLite path must not contain '\"'");
    return "db=\"" + std::string(path) + "\" timeout=10";
}

void configure_sqlite(soci::session& s) {
    // WAL lets readers run while one writer writes; NORMAL is durable in WAL mode except for the
    // last transactions on power loss, never corrupting. busy_timeout makes a second writer wait
    // instead of failing at once.
    s << "PRAGMA journal_mode=WAL";
    s << "PRAGMA busy_timeout=10000";
    s << "PRAGMA foreign_keys=ON";
    s << "PRAGMA synchronous=NORMAL";
}

}  // namespace

target parse_url(std::string_view url) {
    if (url.starts_with("sqlite:")) {
        std::string_view path = url.substr(7);
        if (path.starts_with("//")) path = path.substr(2);  // sqlite:///abs/path
        if (path.empty() || path.front() != '/')
            throw std::invalid_argument("database URL: sqlite: needs an absolute path (sqlite:/var/lib/x.db)");
        std::string file = percent_decode(path);
        return {backend::sqlite, sqlite_connect_string(file), file};
    }
    if (url.starts_with("postgresql://")) return parse_postgresql(url.substr(13));
    if (url.starts_with("postgres://")) return parse_postgresql(url.substr(11));
    throw std::invalid_argument("database URL must start with sqlite: or postgresql://");
}

pool::pool(std::string_view url, std::size_t size) {
    target t = parse_url(url);
    kind_ = t.kind;
    file_ = t.file;
    size_ = size == 0 ? 1 : size;
    pool_ = std::make_unique<soci::connection_pool>(size_);
    for (std::size_t i = 0; i < size_; ++i) {
        soci::session& s = pool_->at(i);
        if (kind_ == backend::sqlite) {
            s.open(soci::sqlite3, t.connect_string);
            configure_sqlite(s);
        } else {
            s.open(soci::postgresql, t.connect_string);
        }
    }
}

pool::~pool() = default;

std::unique_ptr<soci::session> pool::lease() { return std::make_unique<soci::session>(*pool_); }

}  // namespace aq::sql
