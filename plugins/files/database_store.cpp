#include "database_store.hpp"

#include "sql/transaction.hpp"

#include <soci/soci.h>

#include <algorithm>
#include <cstring>
#include <stdexcept>

namespace aq::files {

using sql::param;

// ---- writer --------------------------------------------------------------------------------

class database_writer : public content_writer {
public:
    database_writer(database_store& store, std::string key, std::function<void()> intent)
        : store_(store), key_(std::move(key)), intent_(std::move(intent)) {}

    void write(std::string_view data) override {
        if (ended_short_) throw std::logic_error("a write after a part that ended mid-chunk");
        while (!data.empty()) {
            if (buffer_.capacity() < database_store::chunk_bytes) buffer_.reserve(database_store::chunk_bytes);
            std::size_t take = std::min(database_store::chunk_bytes - buffer_.size(), data.size());
            buffer_.append(data.substr(0, take));
            data.remove_prefix(take);
            if (buffer_.size() == database_store::chunk_bytes) flush();
        }
    }

    // The part's chunks copied inside the database under this key, 64 per short transaction (as
    // remove() deletes them), renumbered after this writer's own: only at a chunk boundary, and
    // a part that ends mid-chunk only as the last. The part keeps its chunks, so a completion
    // that fails later leaves the Upload's parts as they were.
    bool append(content_store& from, const file_record& part, bool last) override {
        if (&from != &store_ || !buffer_.empty() || ended_short_ || part.chunk_bytes != database_store::chunk_bytes)
            return false;
        const bool short_end = part.bytes % database_store::chunk_bytes != 0;
        if (short_end && !last) return false;
        if (intent_) record_intent();
        const long long chunks =
            static_cast<long long>((part.bytes + database_store::chunk_bytes - 1) / database_store::chunk_bytes);
        for (long long first = 0; first < chunks; first += 64) {
            const long long end = std::min(first + 64, chunks);
            sql::session_lease lease = store_.pool_.lease_streaming();
            long long copied = lease.run([&](soci::session& s) {
                sql::write_transaction tx(s, store_.pool_.kind());
                long long n = store_.dialect_.execute(
                    s,
                    "insert into file_chunks (file_id, seq, data) select $1, seq + $2, data from file_chunks"
                    " where file_id = $3 and seq >= $4 and seq < $5",
                    {param::text(key_), param::integer(seq_), param::text(part.content_key), param::integer(first),
                     param::integer(end)});
                tx.commit();
                return n;
            });
            if (copied != end - first) throw content_gone("the chunks of " + part.content_key + " are gone");
        }
        seq_ += chunks;
        ended_short_ = short_end;
        return true;
    }

    void seal() override {
        if (intent_) record_intent();
        if (!buffer_.empty()) flush();
        std::string().swap(buffer_);
    }

private:
    void record_intent() {
        auto intent = std::move(intent_);
        intent_ = nullptr;
        intent();
    }

    // One chunk, one short transaction, on a streaming lease.
    void flush() {
        if (intent_) record_intent();
        sql::session_lease lease = store_.pool_.lease_streaming();
        lease.run([&](soci::session& s) {
            sql::write_transaction tx(s, store_.pool_.kind());
            store_.dialect_.execute(s, "insert into file_chunks (file_id, seq, data) values ($1, $2, $3)",
                                    {param::text(key_), param::integer(seq_), param::blob(buffer_)});
            tx.commit();
        });
        ++seq_;
        buffer_.clear();
    }

    database_store& store_;
    std::string key_;
    std::function<void()> intent_;
    std::string buffer_;
    long long seq_ = 0;
    bool ended_short_ = false;  // the last chunk appended is short: nothing may follow
};

// ---- reader --------------------------------------------------------------------------------

class database_reader : public content_reader {
public:
    database_reader(database_store& store, const file_record& file, std::uint64_t offset, std::uint64_t length)
        : store_(store), key_(file.content_key), left_(length) {
        const std::uint64_t cb = file.chunk_bytes ? file.chunk_bytes : database_store::chunk_bytes;
        seq_ = static_cast<long long>(offset / cb);
        skip_ = static_cast<std::size_t>(offset % cb);
    }

    std::size_t read(std::span<char> buf) override {
        if (left_ == 0 || buf.empty()) return 0;
        if (offset_ == chunk_.size()) {
            auto data = store_.pool_.run([&](soci::session& s) {
                return store_.dialect_.fetch(s, "select data from file_chunks where file_id = $1 and seq = $2",
                                             {param::text(key_), param::integer(seq_)});
            });
            if (!data || data->size() <= skip_) throw content_gone("the content's chunks are gone: " + key_);
            chunk_ = std::move(*data);
            offset_ = skip_;
            skip_ = 0;
            ++seq_;
        }
        const std::size_t n =
            static_cast<std::size_t>(std::min<std::uint64_t>({buf.size(), chunk_.size() - offset_, left_}));
        std::memcpy(buf.data(), chunk_.data() + offset_, n);
        offset_ += n;
        left_ -= n;
        if (offset_ == chunk_.size() || left_ == 0) {
            std::string().swap(chunk_);  // a reader that stalls now holds nothing
            offset_ = 0;
        }
        return n;
    }

private:
    database_store& store_;
    std::string key_;
    long long seq_ = 0;
    std::size_t skip_ = 0;   // bytes to drop from the next chunk (the offset within it)
    std::string chunk_;      // the current chunk
    std::size_t offset_ = 0; // bytes of chunk_ already handed out
    std::uint64_t left_;
};

// ---- store ---------------------------------------------------------------------------------

database_store::database_store(sql::pool& pool) : pool_(pool), dialect_(pool.kind()) {}

std::unique_ptr<content_writer> database_store::create(const std::string& key, std::uint64_t /*max_bytes*/,
                                       std::function<void()> intent) {
    return std::make_unique<database_writer>(*this, key, std::move(intent));
}

std::unique_ptr<content_reader> database_store::open(const file_record& file, std::uint64_t offset,
                                                     std::uint64_t length) {
    return std::make_unique<database_reader>(*this, file, offset, length);
}

void database_store::remove(const std::string& key, bool) {
    // 64 chunks per transaction, so that a large file's removal never holds SQLite's write lock
    // for long; fenced by the row that may own the chunks (see the header).
    for (;;) {
        long long removed = pool_.run([&](soci::session& s) {
            sql::write_transaction tx(s, pool_.kind());
            long long n = dialect_.execute(
                s,
                "delete from file_chunks where file_id = $1 and seq in (select seq from file_chunks where file_id = $1"
                " order by seq limit 64) and not exists (select 1 from files where id = $1 and store = 'database'"
                " and state = 'ready')",
                {param::text(key)});
            tx.commit();
            return n;
        });
        if (removed == 0) return;
    }
}

std::string database_store::adopt(soci::session& session, const std::string& key, const std::string& file_id) {
    if (key != file_id)
        dialect_.execute(session, "update file_chunks set file_id = $1 where file_id = $2",
                         {param::text(file_id), param::text(key)});
    return file_id;
}

}  // namespace aq::files
