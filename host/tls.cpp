#include "tls.hpp"

#include "config.hpp"

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include <cerrno>
#include <cstring>
#include <stdexcept>

namespace aqd {

namespace {

// OpenSSL's reason for the last failure on this thread, and the queue cleared.
std::string openssl_reason() {
    std::string out;
    while (const unsigned long e = ERR_get_error()) {
        char buf[256];
        ERR_error_string_n(e, buf, sizeof buf);
        if (!out.empty()) out += "; ";
        out += buf;
    }
    return out.empty() ? "unknown OpenSSL error" : out;
}

// ALPN: this server speaks HTTP/1.1 only; a client offering only others goes on without ALPN.
int select_alpn(SSL*, const unsigned char** out, unsigned char* out_len, const unsigned char* in, unsigned int in_len,
                void*) {
    static const unsigned char http11[] = {8, 'h', 't', 't', 'p', '/', '1', '.', '1'};
    unsigned char* chosen = nullptr;
    if (SSL_select_next_proto(&chosen, out_len, http11, sizeof http11, in, in_len) == OPENSSL_NPN_NEGOTIATED) {
        *out = chosen;
        return SSL_TLSEXT_ERR_OK;
    }
    return SSL_TLSEXT_ERR_NOACK;
}

std::string describe(SSL_CTX* ctx) {
    X509* cert = SSL_CTX_get0_certificate(ctx);
    if (!cert) return "no certificate";
    std::string out = "subject ";
    char name[256];
    X509_NAME_oneline(X509_get_subject_name(cert), name, sizeof name);
    out += name;
    if (BIGNUM* serial = ASN1_INTEGER_to_BN(X509_get0_serialNumber(cert), nullptr)) {
        if (char* hex = BN_bn2hex(serial)) {
            out += ", serial ";
            out += hex;
            OPENSSL_free(hex);
        }
        BN_free(serial);
    }
    if (BIO* bio = BIO_new(BIO_s_mem())) {
        if (ASN1_TIME_print(bio, X509_get0_notAfter(cert)) == 1) {
            char* text = nullptr;
            const long len = BIO_get_mem_data(bio, &text);
            out += ", valid until ";
            out.append(text, static_cast<std::size_t>(len));
        }
        BIO_free(bio);
    }
    return out;
}

}  // namespace

tls_context::tls_context(const tls_config& cfg) {
    ERR_clear_error();
    ctx_ = SSL_CTX_new(TLS_server_method());
    if (!ctx_) throw std::runtime_error("tls: cannot create a context: " + openssl_reason());
    const auto fail = [&](const std::string& what) {
        const std::string why = what + ": " + openssl_reason();
        SSL_CTX_free(ctx_);
        ctx_ = nullptr;
        throw std::runtime_error(why);
    };
    SSL_CTX_set_min_proto_version(ctx_, cfg.min_version == 13 ? TLS1_3_VERSION : TLS1_2_VERSION);
    // Renegotiation is an attack surface (and would make a read want to write); the server's
    // cipher order, not the client's.
    SSL_CTX_set_options(ctx_, SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE | SSL_OP_NO_COMPRESSION);
    // Free record buffers whenever they are empty (an idle connection keeps none); partial
    // writes, and a retried write may come from another address (the connection moves strings).
    SSL_CTX_set_mode(ctx_, SSL_MODE_RELEASE_BUFFERS | SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    SSL_CTX_set_alpn_select_cb(ctx_, &select_alpn, nullptr);
    if (SSL_CTX_use_certificate_chain_file(ctx_, cfg.certificate.c_str()) != 1)
        fail("tls.certificate " + cfg.certificate.string() + ": cannot load");
    if (SSL_CTX_use_PrivateKey_file(ctx_, cfg.private_key.c_str(), SSL_FILETYPE_PEM) != 1)
        fail("tls.private_key " + cfg.private_key.string() + ": cannot load");
    if (SSL_CTX_check_private_key(ctx_) != 1)
        fail("tls.private_key " + cfg.private_key.string() + ": does not match tls.certificate");
    description_ = describe(ctx_);
}

tls_context::~tls_context() {
    if (ctx_) SSL_CTX_free(ctx_);
}

tls_session::tls_session(const tls_context& ctx, int fd) {
    ERR_clear_error();
    ssl_ = SSL_new(ctx.native());  // holds a reference to the context: a reload cannot free it
    if (!ssl_ || SSL_set_fd(ssl_, fd) != 1) {
        const std::string why = openssl_reason();
        if (ssl_) SSL_free(ssl_);
        throw std::runtime_error("tls: cannot create a session: " + why);
    }
    SSL_set_accept_state(ssl_);
}

tls_session::~tls_session() {
    if (ssl_) SSL_free(ssl_);
}

tls_session::outcome tls_session::after(int ret) {
    const int err = SSL_get_error(ssl_, ret);
    switch (err) {
    case SSL_ERROR_WANT_READ: return outcome::want_read;
    case SSL_ERROR_WANT_WRITE: return outcome::want_write;
    case SSL_ERROR_ZERO_RETURN: return outcome::closed;
    case SSL_ERROR_SYSCALL:
        if (ERR_peek_error() == 0) {
            error_ = errno ? std::strerror(errno) : "end of stream";
            ERR_clear_error();
            return errno ? outcome::failed : outcome::closed;
        }
        [[fallthrough]];
    default: {
        const unsigned long e = ERR_peek_error();
        const int reason = ERR_GET_REASON(e);
        plain_http_ = ERR_GET_LIB(e) == ERR_LIB_SSL && (reason == SSL_R_HTTP_REQUEST || reason == SSL_R_HTTPS_PROXY_REQUEST);
        error_ = openssl_reason();
        return outcome::failed;
    }
    }
}

tls_session::outcome tls_session::handshake() {
    ERR_clear_error();
    const int ret = SSL_do_handshake(ssl_);
    return ret == 1 ? outcome::done : after(ret);
}

tls_session::outcome tls_session::read(char* buf, std::size_t cap, std::size_t& n) {
    ERR_clear_error();
    n = 0;
    const int ret = SSL_read_ex(ssl_, buf, cap, &n);
    return ret == 1 ? outcome::done : after(ret);
}

tls_session::outcome tls_session::write(const char* data, std::size_t len, std::size_t& n) {
    ERR_clear_error();
    n = 0;
    const int ret = SSL_write_ex(ssl_, data, len, &n);
    return ret == 1 ? outcome::done : after(ret);
}

void tls_session::close_notify() noexcept {
    ERR_clear_error();
    // One attempt: a socket that does not take the alert now is closed anyway.
    (void)SSL_shutdown(ssl_);
    ERR_clear_error();
}

bool tls_session::pending() const noexcept { return SSL_has_pending(ssl_) == 1; }

}  // namespace aqd
