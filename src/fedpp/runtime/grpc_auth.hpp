// Who may talk to a deployment, and how: client tokens and TLS credentials for `fedpp serve`
// and `fedpp join` (runtime/grpc_server.hpp, runtime/grpc_client.hpp).
//
// Tokens: one per client, from a file of "client_id token" lines or derived from a deployment
// secret (derive_token); the server compares them in constant time. TLS: the server's
// certificate and key, optionally a CA that client certificates must come from (mutual TLS);
// the client's CA for the server, optionally its own certificate and key. Without TLS both ends
// warn that tokens and models travel in clear text. Every function throws fedpp::Error naming
// the key or flag and the fix when a file is unreadable or a setting incomplete. Thread-safe
// (no shared state).
#pragma once
#include <grpcpp/security/credentials.h>
#include <grpcpp/security/server_credentials.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace fedpp {

// The contents of a file that a key or flag names (`what`); fedpp::Error naming it when
// unreadable.
std::string read_named_file(const std::string& path, const std::string& what);

// The token of `client` for a deployment secret: hex of HMAC-SHA256(secret, "fedpp-client:<id>"),
// first 32 hex digits (128 bits).
std::string derive_token(const std::string& secret, int64_t client);

// Every client's token (index = client id; "" = that client cannot join) from
// deploy.tokens_file or deploy.token_secret (exactly one of them set).
std::vector<std::string> load_tokens(const std::string& tokens_file, const std::string& token_secret,
                                     int64_t n);

// The server's credentials from deploy.tls_cert, deploy.tls_key and deploy.tls_client_ca (all
// empty: insecure, with a warning).
std::shared_ptr<grpc::ServerCredentials> server_credentials(const std::string& cert,
                                                            const std::string& key,
                                                            const std::string& client_ca);

// A client's credentials from --tls-ca, --tls-cert, --tls-key (all empty: insecure, with a
// warning naming `client_id`).
std::shared_ptr<grpc::ChannelCredentials> client_credentials(const std::string& ca,
                                                             const std::string& cert,
                                                             const std::string& key,
                                                             int64_t client_id);

}  // namespace fedpp
