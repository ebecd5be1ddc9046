#include "batch_line/validator.hpp"

#include <algorithm>
#include <cstring>

namespace aq::batch_line {
namespace {

bool blank(char c) { return c == ' ' || c == '\t' || c == '\r'; }

// The offset of the first non-blank byte, or s.size().
std::size_t first_non_blank(std::string_view s) {
    std::size_t i = 0;
    while (i < s.size() && blank(s[i])) ++i;
    return i;
}

}  // namespace

validator::validator(options opts)
    : opts_(std::move(opts)), parser_(opts_.limit), ids_(opts_.scratch_dir) {
    opts_.max_problems = std::max<std::size_t>(opts_.max_problems, 1);
    parser_.reset();
}

validator::~validator() = default;

void validator::push(std::string_view bytes) {
    while (!bytes.empty() && !stopped_) {
        const void* nl = std::memchr(bytes.data(), '\n', bytes.size());
        std::size_t n = nl ? static_cast<std::size_t>(static_cast<const char*>(nl) - bytes.data()) : bytes.size();
        feed(bytes.substr(0, n));
        if (!nl) return;
        end_line();
        bytes.remove_prefix(n + 1);
    }
}

void validator::finish() {
    if (stopped_) return;
    if (line_bytes_ > 0) end_line();
    if (!stopped_ && requests_ == 0 && problems_.empty())
        report(0, "empty_file", "The batch file contains no requests");
}

// Bytes of the current line (no '\n').
void validator::feed(std::string_view piece) {
    if (skipping_ || piece.empty()) return;
    line_bytes_ += piece.size();
    if (line_bytes_ > opts_.limit.max_line_bytes) {
        report(line_, "line_too_long", "Line is too long (over " + std::to_string(opts_.limit.max_line_bytes) + " bytes)");
        skipping_ = true;
        text_.clear();
        return;
    }
    utf8_.feed(piece);
    if (opts_.keep_text) {
        text_.append(piece);
        return;
    }
    if (!started_) {
        std::size_t skip = first_non_blank(piece);
        if (skip == piece.size()) return;
        piece.remove_prefix(skip);
        started_ = true;
    }
    parser_.write(piece);
}

void validator::end_line() {
    if (!skipping_ && !stopped_) judge_line();
    ++line_;
    line_bytes_ = 0;
    started_ = skipping_ = false;
    utf8_ = utf8_validator();
    text_.clear();
    parser_.reset();
}

void validator::judge_line() {
    if (opts_.keep_text) {
        started_ = first_non_blank(text_) < text_.size();
        if (started_) parser_.write(text_);
    }
    if (!started_) return;  // blank
    if (++requests_ > opts_.limit.max_requests) {
        report(line_, "too_many_requests", "Too many requests (the limit is " + std::to_string(opts_.limit.max_requests) + ")");
        stopped_ = true;
        return;
    }
    if (!utf8_.complete()) return report(line_, "invalid_json_line", "Invalid UTF-8");
    if (!parser_.finish()) return report(line_, "invalid_json_line", "Invalid JSON");
    if (auto p = parser_.judge(opts_.rules))
        return report(line_, std::move(p->code), std::move(p->message), std::move(p->param));
    if (!ids_.insert(parser_.custom_id()))
        return report(line_, "duplicate_custom_id", "Duplicate custom_id", "custom_id");
    if (opts_.on_line && problems_.empty()) {
        line l;
        l.number = line_;
        l.custom_id = parser_.custom_id();
        l.url = parser_.url();
        l.model = parser_.model();
        if (opts_.keep_text) {
            l.text = text_;
            l.body = member_value(text_, parser_.body_member());
        }
        opts_.on_line(l);
    }
}

void validator::report(std::uint64_t line, std::string code, std::string message, std::string param) {
    problems_.push_back(problem{line, std::move(code), std::move(message), std::move(param)});
    if (problems_.size() >= opts_.max_problems) stopped_ = true;
}

std::string describe(const problem& p) {
    return p.line ? p.message + " at line " + std::to_string(p.line) : p.message;
}

}  // namespace aq::batch_line
