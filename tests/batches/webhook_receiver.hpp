// A webhook endpoint for the tests: an HTTP/1.1 server on 127.0.0.1 that records every request
// it gets (path, the webhook-* headers, body) and answers 200, or 500 to the next N. It stands
// for a customer's service, which cannot run here.
#pragma once

#include <memory>
#include <string>
#include <vector>

namespace aqt {

struct webhook_delivery {
    std::string path, content_type, id, timestamp, signature, body;
    int answered = 0;
};

class webhook_receiver {
public:
    // port 0: any free port; another: that one (to come back where a stopped one listened).
    explicit webhook_receiver(unsigned short port = 0);
    ~webhook_receiver();
    webhook_receiver(const webhook_receiver&) = delete;
    webhook_receiver& operator=(const webhook_receiver&) = delete;

    unsigned short port() const noexcept;
    std::string url() const;  // "http://127.0.0.1:PORT/hooks"
    void fail_next(int n);    // the next n requests get 500
    std::vector<webhook_delivery> deliveries() const;

private:
    struct impl;
    std::unique_ptr<impl> impl_;
};

}  // namespace aqt
