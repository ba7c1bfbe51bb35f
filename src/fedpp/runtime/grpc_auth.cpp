#include "fedpp/runtime/grpc_auth.hpp"

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <spdlog/spdlog.h>

#include <fstream>
#include <sstream>

#include "fedpp/core/error.hpp"

namespace fedpp {

std::string read_named_file(const std::string& path, const std::string& what) {
  std::ifstream in(path, std::ios::binary);
  FEDPP_CHECK(in.good(), "cannot read " + what + " '" + path + "': check the path");
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::string derive_token(const std::string& secret, int64_t client) {
  const std::string msg = "fedpp-client:" + std::to_string(client);
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  HMAC(EVP_sha256(), secret.data(), static_cast<int>(secret.size()),
       reinterpret_cast<const unsigned char*>(msg.data()), msg.size(), md, &len);
  static const char* hex = "0123456789abcdef";
  std::string out;
  for (unsigned int i = 0; i < 16 && i < len; ++i) {
    out += hex[md[i] >> 4];
    out += hex[md[i] & 15];
  }
  return out;
}

std::vector<std::string> load_tokens(const std::string& tokens_file, const std::string& token_secret,
                                     int64_t n) {
  FEDPP_CHECK(tokens_file.empty() || token_secret.empty(),
              "set one of deploy.tokens_file and deploy.token_secret, not both");
  std::vector<std::string> tokens(static_cast<size_t>(n));
  if (!token_secret.empty()) {
    for (int64_t c = 0; c < n; ++c) tokens[static_cast<size_t>(c)] = derive_token(token_secret, c);
    return tokens;
  }
  FEDPP_CHECK(!tokens_file.empty(),
              "fedpp serve needs client tokens: set deploy.tokens_file (lines \"client_id token\")"
              " or deploy.token_secret (see `fedpp tokens`)");
  std::istringstream in(read_named_file(tokens_file, "deploy.tokens_file"));
  std::string line;
  int lineno = 0;
  while (std::getline(in, line)) {
    ++lineno;
    line = line.substr(0, line.find('#'));
    std::istringstream ls(line);
    int64_t id = -1;
    std::string token, extra;
    if (!(ls >> id)) {
      FEDPP_CHECK(line.find_first_not_of(" \t\r") == std::string::npos,
                  tokens_file + " line " + std::to_string(lineno) +
                      ": expected \"client_id token\"");
      continue;
    }
    FEDPP_CHECK((ls >> token) && !(ls >> extra) && id >= 0 && id < n,
                tokens_file + " line " + std::to_string(lineno) +
                    ": expected \"client_id token\" with client_id in 0.." + std::to_string(n - 1));
    tokens[static_cast<size_t>(id)] = token;
  }
  int64_t missing = 0;
  for (const auto& t : tokens) missing += t.empty();
  if (missing)
    spdlog::warn("{} of {} clients have no token in {} and cannot join", missing, n,
                 tokens_file);
  return tokens;
}

std::shared_ptr<grpc::ServerCredentials> server_credentials(const std::string& cert,
                                                            const std::string& key,
                                                            const std::string& client_ca) {
  if (!cert.empty() || !key.empty()) {
    FEDPP_CHECK(!cert.empty() && !key.empty(),
                "deploy.tls_cert and deploy.tls_key go together: set both");
    grpc::SslServerCredentialsOptions ssl(
        client_ca.empty() ? GRPC_SSL_DONT_REQUEST_CLIENT_CERTIFICATE
                          : GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY);
    ssl.pem_key_cert_pairs.push_back(
        {read_named_file(key, "deploy.tls_key"), read_named_file(cert, "deploy.tls_cert")});
    if (!client_ca.empty()) ssl.pem_root_certs = read_named_file(client_ca, "deploy.tls_client_ca");
    return grpc::SslServerCredentials(ssl);
  }
  FEDPP_CHECK(client_ca.empty(),
              "deploy.tls_client_ca (mutual TLS) needs deploy.tls_cert and deploy.tls_key");
  spdlog::warn("no TLS: tokens and models travel in clear text (set deploy.tls_cert and "
               "deploy.tls_key)");
  return grpc::InsecureServerCredentials();
}

std::shared_ptr<grpc::ChannelCredentials> client_credentials(const std::string& ca,
                                                             const std::string& cert,
                                                             const std::string& key,
                                                             int64_t client_id) {
  if (!ca.empty()) {
    grpc::SslCredentialsOptions ssl;
    ssl.pem_root_certs = read_named_file(ca, "--tls-ca");
    FEDPP_CHECK(cert.empty() == key.empty(),
                "--tls-cert and --tls-key go together: give both for mutual TLS");
    if (!cert.empty()) {
      ssl.pem_cert_chain = read_named_file(cert, "--tls-cert");
      ssl.pem_private_key = read_named_file(key, "--tls-key");
    }
    return grpc::SslCredentials(ssl);
  }
  FEDPP_CHECK(cert.empty() && key.empty(),
              "--tls-cert/--tls-key need --tls-ca (the server's CA certificate)");
  spdlog::warn("client {}: no TLS: this client's token, the model and its updates travel in "
               "clear text (give --tls-ca for a server with deploy.tls_cert)",
               client_id);
  return grpc::InsecureChannelCredentials();
}

}  // namespace fedpp
