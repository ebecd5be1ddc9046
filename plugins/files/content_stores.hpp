// The content stores a gateway can read (every one its config sets up), and the one new files
// go to (`store`). Built once at init from the config; read-only afterwards, so any thread may
// use it.
#pragma once

#include "config.hpp"
#include "content_store.hpp"
#include "s3_store.hpp"  // s3_store::retry_report (s3/client.hpp: no Beast or Asio)

#include "sql/pool.hpp"

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>

namespace aq::files {

class content_stores {
public:
    // Opens what `cfg` sets up: the database store (on `pool`) always, the filesystem store when
    // it has a path, the s3 store when configured; new files go to cfg.store. Throws
    // std::runtime_error (std::invalid_argument for bad settings) naming the store and why it
    // cannot open; `on_s3_retry` is told of the s3 store's retried requests.
    content_stores(const config& cfg, sql::pool& pool, s3_store::retry_report on_s3_retry);
    // A set of given stores, new files going to `current` (tests, tools).
    content_stores(std::vector<std::unique_ptr<content_store>> stores, std::string_view current);

    content_store& current() const noexcept { return *current_; }
    // nullptr when this config does not set up a store of that name.
    content_store* find(std::string_view name) const noexcept;
    // The store called `name`; throws std::runtime_error naming it when it is not set up.
    content_store& get(std::string_view name) const;

private:
    void choose(std::string_view name);

    std::map<std::string, std::unique_ptr<content_store>, std::less<>> stores_;
    content_store* current_ = nullptr;
};

}  // namespace aq::files
