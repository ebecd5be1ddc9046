#include "admission.hpp"

namespace aqd {

admission::ticket admission::try_enter(std::string_view principal) {
    std::lock_guard lock(mutex_);
    auto [it, fresh] = busy_.try_emplace(std::string(principal), 0u);
    if (it->second >= limit_) return {};
    ++it->second;
    return ticket(this, &*it);
}

std::uint32_t admission::in_flight(std::string_view principal) const {
    std::lock_guard lock(mutex_);
    auto it = busy_.find(std::string(principal));
    return it == busy_.end() ? 0u : it->second;
}

void admission::ticket::release() noexcept {
    if (!owner_) return;
    std::lock_guard lock(owner_->mutex_);
    if (--slot_->second == 0) owner_->busy_.erase(owner_->busy_.find(slot_->first));
    owner_ = nullptr;
}

}  // namespace aqd
