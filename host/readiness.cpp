#include "readiness.hpp"

#include "log.hpp"

namespace aqd {

bool readiness::add(const std::string& plugin, aq_readiness_fn fn, void* ctx) {
    std::lock_guard lock(mutex_);
    for (const entry& e : entries_)
        if (e.plugin == plugin) return false;
    entries_.push_back(entry{plugin, fn, ctx});
    return true;
}

void readiness::check() {
    std::size_t count;
    {
        std::lock_guard lock(mutex_);
        count = entries_.size();
    }
    for (std::size_t i = 0; i < count; ++i) {
        aq_readiness_fn fn;
        void* ctx;
        {
            std::lock_guard lock(mutex_);
            fn = entries_[i].fn;
            ctx = entries_[i].ctx;
        }
        const bool ready = fn(ctx);  // outside the lock: it may take a while
        std::lock_guard lock(mutex_);
        entry& e = entries_[i];
        e.ready = ready;
        e.answered = clock_type::now();
        if (ready != e.reported) {
            e.reported = ready;
            if (ready)
                log::info("host", "plugin " + e.plugin + " is ready again");
            else
                log::warn("host", "plugin " + e.plugin + " is not ready: /readyz answers 503");
        }
    }
}

std::size_t readiness::size() const {
    std::lock_guard lock(mutex_);
    return entries_.size();
}

std::vector<std::string> readiness::not_ready() const {
    std::vector<std::string> out;
    const auto now = clock_type::now();
    std::lock_guard lock(mutex_);
    for (const entry& e : entries_)
        if (!e.ready || now - e.answered > 3 * interval_) out.push_back(e.plugin);
    return out;
}

}  // namespace aqd
