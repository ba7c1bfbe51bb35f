// The deployment subcommands of the `fedpp` binary:
//   fedpp serve CONFIG [--set k=v] [--listen HOST:PORT] [--resume]
//   fedpp join CONFIG --server HOST:PORT --client-id ID (--token T | --token-file F)
//              [--state-dir DIR] [--tls-ca PEM [--tls-cert PEM --tls-key PEM]] [--set k=v]
//   fedpp tokens CONFIG [--set k=v]     prints "client_id token" for every client, derived from
//                                       deploy.token_secret (a valid deploy.tokens_file)
// Their callbacks run the command and throw fedpp::Error for user errors.
#pragma once
#include <CLI/CLI.hpp>

namespace fedpp {

void add_deploy_commands(CLI::App& app);

}  // namespace fedpp
