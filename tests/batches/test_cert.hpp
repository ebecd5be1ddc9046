// A self-signed certificate made at run time (valid from yesterday for ten years), so the TLS
// tests never depend on a checked-in certificate expiring or on the machine's clock.
#pragma once

#include <string>

namespace aqt {

struct pem_pair {
    std::string cert, key;
};

// An EC P-256 certificate for DNS name `host` (subjectAltName), self-signed.
pem_pair make_self_signed(const std::string& host);

}  // namespace aqt
