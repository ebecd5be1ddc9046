#include "object_writer.hpp"

#include "streamed_put.hpp"

#include <algorithm>
#include <stdexcept>

namespace aq::s3 {

namespace {
constexpr std::size_t stream_block = 1 << 20;  // write_from's reads while streaming
}

object_writer::object_writer(client& c, std::string key, large_objects large)
    : client_(c), key_(std::move(key)), part_size_(c.config().part_size), max_in_flight_(c.config().parts_in_flight),
      large_(large) {}

object_writer::~object_writer() {
    if (state_ == state::uploading || state_ == state::streaming) abort();
    wait_all();
}

void object_writer::require_open(const char* what) const {
    if (state_ != state::buffering && state_ != state::uploading && state_ != state::streaming)
        throw std::logic_error(std::string("object_writer: ") + what + " after the upload ended");
}

// Runs one step; a failure aborts the upload and leaves the writer failed.
template <class Fn>
auto object_writer::guarded(Fn&& fn) -> decltype(fn()) {
    try {
        return fn();
    } catch (...) {
        abort();
        state_ = state::failed;
        throw;
    }
}

void object_writer::overflow() {
    if (large_ == large_objects::multipart) {
        send_part();
        return;
    }
    // The stream's queue holds up to a part's size: with the buffer it starts with, the memory
    // stays within the multipart writer's bound.
    stream_ = std::make_unique<streamed_put>(client_, key_, part_size_);
    state_ = state::streaming;
    stream_->push(std::move(buffer_));
    buffer_ = std::string();
}

void object_writer::send_part() {
    if (upload_id_.empty()) {
        upload_id_ = client_.create_multipart_upload(key_);
        state_ = state::uploading;
    }
    int number = next_part_++;
    if (max_in_flight_ == 0) {
        parts_.push_back({number, client_.upload_part(key_, upload_id_, number, buffer_)});
        buffer_.clear();  // keeps its capacity: the next part reuses it
        return;
    }
    while (flying_.size() >= max_in_flight_) collect_oldest();
    part_in_flight& p = flying_.emplace_back();
    p.number = number;
    p.data = std::move(buffer_);
    p.etag = std::async(std::launch::async, [this, &p] { return client_.upload_part(key_, upload_id_, p.number, p.data); });
    if (!spare_.empty()) {
        buffer_ = std::move(spare_.back());
        spare_.pop_back();
    } else {
        buffer_ = std::string();
    }
}

// Waits for the oldest part in flight and records its ETag; rethrows its failure.
void object_writer::collect_oldest() {
    part_in_flight& p = flying_.front();
    std::string etag;
    try {
        etag = p.etag.get();  // in place: its thread reads p.data until this returns
    } catch (...) {
        flying_.pop_front();
        throw;
    }
    parts_.push_back({p.number, std::move(etag)});
    p.data.clear();
    spare_.push_back(std::move(p.data));
    flying_.pop_front();
}

void object_writer::wait_all() noexcept {
    for (auto& p : flying_)
        if (p.etag.valid()) p.etag.wait();
    flying_.clear();
}

void object_writer::write(std::string_view data) {
    require_open("write");
    guarded([&] {
        while (!data.empty()) {
            if (state_ == state::streaming) {
                std::string block = stream_->spare();
                block.assign(data);
                stream_->push(std::move(block));
                size_ += data.size();
                return;
            }
            // A full buffer is sent only once more bytes come, so an object of exactly one part
            // still goes as a single PUT, and the last part is never empty.
            if (buffer_.size() == part_size_) {
                overflow();
                continue;
            }
            std::size_t take = std::min(part_size_ - buffer_.size(), data.size());
            if (buffer_.capacity() < buffer_.size() + take)
                buffer_.reserve(std::min(part_size_, std::max(buffer_.size() + take, 2 * buffer_.capacity())));
            buffer_.append(data.substr(0, take));
            data.remove_prefix(take);
            size_ += take;
        }
    });
}

std::uint64_t object_writer::write_from(const std::function<std::size_t(char*, std::size_t)>& read) {
    require_open("write_from");
    std::uint64_t total = 0;
    guarded([&] {
        buffer_.reserve(part_size_);
        for (;;) {
            if (state_ == state::streaming) {
                std::string block = stream_->spare();
                block.resize(stream_block);
                std::size_t n = read(block.data(), stream_block);
                if (n == 0) return;
                block.resize(n);
                stream_->push(std::move(block));
                size_ += n;
                total += n;
                continue;
            }
            if (buffer_.size() == part_size_) {
                // Reading one byte ahead tells a full last part from one with more to follow.
                char next;
                std::size_t n = read(&next, 1);
                if (n == 0) return;
                overflow();
                if (state_ == state::streaming) {
                    stream_->push(std::string(1, next));
                    ++size_;
                    ++total;
                    continue;
                }
                buffer_.push_back(next);
                ++size_;
                ++total;
            }
            // Fill the buffer in place: no copy between the source and the part.
            std::size_t used = buffer_.size();
            buffer_.resize(part_size_);
            std::size_t n = read(buffer_.data() + used, part_size_ - used);
            buffer_.resize(used + n);
            if (n == 0) return;
            size_ += n;
            total += n;
        }
    });
    return total;
}

std::string object_writer::finish() {
    require_open("finish");
    return guarded([&] {
        std::string etag;
        if (state_ == state::streaming) {
            etag = stream_->finish();
            stream_.reset();
        } else if (upload_id_.empty()) {
            etag = client_.put_object(key_, buffer_);
        } else {
            send_part();
            while (!flying_.empty()) collect_oldest();
            etag = client_.complete_multipart_upload(key_, upload_id_, parts_);
        }
        state_ = state::finished;
        std::string().swap(buffer_);
        return etag;
    });
}

void object_writer::abort() noexcept {
    wait_all();  // a part still uploading would otherwise recreate what the abort removes
    // A streamed PUT broken off before its last chunk stores nothing.
    if (stream_) stream_->cancel();
    if (state_ == state::uploading) {
        try {
            client_.abort_multipart_upload(key_, upload_id_);
        } catch (...) {
            // Best effort: an unfinished upload is found again by list_multipart_uploads.
        }
    }
    if (state_ == state::buffering || state_ == state::uploading || state_ == state::streaming)
        state_ = state::aborted;
    std::string().swap(buffer_);
    spare_.clear();
}

}  // namespace aq::s3
