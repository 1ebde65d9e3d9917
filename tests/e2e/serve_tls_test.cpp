// HTTPS end to end: the real `cascade serve` with a certificate from a
// private CA made here with the openssl command (as an operator would), the
// real CLI as its client. What must hold: a client that trusts the CA gets
// through; one that trusts another CA, or only the system's, or reaches a
// host the certificate does not name, is refused before any token is sent;
// plain HTTP on the HTTPS port is told so; plain HTTP on a non-loopback
// address is refused unless asked for; SIGHUP picks up a renewed certificate.
#include "tests/support/cli_runner.hpp"
#include "tests/support/serve_process.hpp"
#include "tests/support/temp_dir.hpp"

#include <gtest/gtest.h>

#include <sys/stat.h>

#include <filesystem>
#include <string>

namespace cascade {
namespace {

using testing::CommandRun;
using testing::run;
using testing::run_shell;
using testing::ServeProcess;

constexpr auto kStopDeadline = std::chrono::seconds(20);

class ServeTlsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_EQ(run_shell("command -v openssl >/dev/null").exit_code, 0)
        << "the openssl command is missing: tools/dev installs it";
    make_ca("ca");
    make_ca("other-ca");
    make_server_certificate("server", "ca", "DNS:localhost,IP:127.0.0.1");
  }

  std::string path(const std::string& name) const { return dir_ / name; }
  std::string data() const { return dir_ / "data"; }

  void make_ca(const std::string& name) {
    const CommandRun made = run_shell(
        "cd " + dir_.path() + " && openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 " +
        "-nodes -keyout " + name + ".key -out " + name + ".pem -days 2 -subj '/CN=" + name + "' 2>&1");
    ASSERT_EQ(made.exit_code, 0) << made.output;
  }

  // A server certificate for `names` (subjectAltName syntax), signed by `ca`,
  // written to <name>.pem and <name>.key (0600).
  void make_server_certificate(const std::string& name, const std::string& ca, const std::string& names) {
    const std::string in = "cd " + dir_.path() + " && ";
    CommandRun made = run_shell(in + "openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout " +
                                name + ".key -out " + name + ".csr -subj '/CN=cascade' 2>&1 && printf " +
                                "'subjectAltName=" + names + "\\n' > " + name + ".ext && openssl x509 -req -in " +
                                name + ".csr -CA " + ca + ".pem -CAkey " + ca + ".key -CAcreateserial -out " + name +
                                ".pem -days 2 -extfile " + name + ".ext 2>&1 && chmod 600 " + name + ".key");
    ASSERT_EQ(made.exit_code, 0) << made.output;
  }

  std::vector<std::string> tls_arguments(const std::string& name = "server") const {
    return {"--data", data(), "--tls-cert", path(name + ".pem"), "--tls-key", path(name + ".key")};
  }

  CommandRun list_releases(const std::string& url, const std::string& token, const std::string& extra) {
    return run("release list --server " + url + " --token " + token + " " + extra);
  }

  testing::TempDir dir_;
};

TEST_F(ServeTlsTest, ClientsTrustingTheCaGetThroughByAddressAndByName) {
  ServeProcess server(tls_arguments());
  ASSERT_TRUE(server.started()) << server.output();
  EXPECT_EQ(server.url().rfind("https://", 0), 0u) << server.output();
  const std::string token = server.printed_token();

  CommandRun by_address = list_releases(server.url(), token, "--ca " + path("ca.pem"));
  EXPECT_EQ(by_address.exit_code, 0) << by_address.output;
  EXPECT_NE(by_address.output.find("RELEASE"), std::string::npos) << by_address.output;

  const std::string by_name_url = "https://localhost:" + std::to_string(server.port());
  CommandRun by_name = run("release list --server " + by_name_url + " --token " + token);
  EXPECT_NE(by_name.exit_code, 0) << "no --ca and no CASCADE_CA: the private CA is not trusted";
  CommandRun by_name_with_env = run_shell("CASCADE_CA=" + path("ca.pem") + " " + CASCADE_BINARY +
                                          " release list --server " + by_name_url + " --token " + token + " 2>&1");
  EXPECT_EQ(by_name_with_env.exit_code, 0) << by_name_with_env.output;
}

TEST_F(ServeTlsTest, AnUntrustedCertificateIsRefusedBeforeAnyRequest) {
  ServeProcess server(tls_arguments());
  ASSERT_TRUE(server.started()) << server.output();
  const std::string token = server.printed_token();

  for (const std::string& trust : {"--ca " + path("other-ca.pem"), std::string()}) {
    CommandRun refused = list_releases(server.url(), token, trust);
    EXPECT_EQ(refused.exit_code, 1) << trust << ": " << refused.output;
    EXPECT_NE(refused.output.find("certificate verify failed"), std::string::npos) << refused.output;
    EXPECT_NE(refused.output.find("--ca FILE"), std::string::npos) << "the message says how to fix it";
  }
}

TEST_F(ServeTlsTest, ACertificateForAnotherHostIsRefused) {
  make_server_certificate("elsewhere", "ca", "DNS:cascade.example.org");
  ServeProcess server(tls_arguments("elsewhere"));
  ASSERT_TRUE(server.started()) << server.output();

  CommandRun refused = list_releases(server.url(), server.printed_token(), "--ca " + path("ca.pem"));
  EXPECT_EQ(refused.exit_code, 1) << refused.output;
  EXPECT_NE(refused.output.find("TLS with the cascade server"), std::string::npos) << refused.output;
}

TEST_F(ServeTlsTest, PlainHttpOnTheHttpsPortIsToldToUseHttps) {
  ServeProcess server(tls_arguments());
  ASSERT_TRUE(server.started()) << server.output();

  EXPECT_EQ(testing::http_status(server.port(), "/healthz", ""), 400);
  CommandRun plain = list_releases("http://127.0.0.1:" + std::to_string(server.port()), server.printed_token(), "");
  EXPECT_NE(plain.exit_code, 0);
  EXPECT_NE(plain.output.find("this server speaks HTTPS"), std::string::npos) << plain.output;
  // The server goes on serving TLS clients.
  EXPECT_EQ(list_releases(server.url(), server.printed_token(), "--ca " + path("ca.pem")).exit_code, 0);
}

TEST_F(ServeTlsTest, PlainHttpOnANonLoopbackAddressIsRefusedUnlessAskedFor) {
  {
    ServeProcess refused({"--data", data(), "--listen", "0.0.0.0:0"});
    EXPECT_EQ(refused.wait_exit(kStopDeadline), std::optional<int>(2)) << refused.output();
    EXPECT_NE(refused.output().find("refusing plain HTTP on 0.0.0.0"), std::string::npos) << refused.output();
  }

  {
    ServeProcess insecure({"--data", data(), "--listen", "0.0.0.0:0", "--insecure-http"});
    ASSERT_TRUE(insecure.started()) << insecure.output();
    EXPECT_EQ(testing::http_status(insecure.port(), "/healthz", ""), 200);
    EXPECT_EQ(insecure.stop(SIGTERM, kStopDeadline), 0);
  }
  ServeProcess tls({"--data", data(), "--listen", "0.0.0.0:0", "--tls-cert", path("server.pem"), "--tls-key",
                    path("server.key")});
  ASSERT_TRUE(tls.started()) << tls.output();
}

TEST_F(ServeTlsTest, AKeyEveryUserCanReadIsRefusedAtStart) {
  ::chmod(path("server.key").c_str(), 0644);
  ServeProcess refused({"--data", data(), "--tls-cert", path("server.pem"), "--tls-key", path("server.key")});
  EXPECT_EQ(refused.wait_exit(kStopDeadline), std::optional<int>(2)) << refused.output();
  EXPECT_NE(refused.output().find("chmod o-rwx"), std::string::npos) << refused.output();
}

TEST_F(ServeTlsTest, SighupLoadsARenewedCertificate) {
  ServeProcess server(tls_arguments());
  ASSERT_TRUE(server.started()) << server.output();
  const std::string token = server.printed_token();
  ASSERT_EQ(list_releases(server.url(), token, "--ca " + path("ca.pem")).exit_code, 0);

  // The renewal comes from another CA, so which certificate is served shows.
  make_server_certificate("renewed", "other-ca", "DNS:localhost,IP:127.0.0.1");
  std::filesystem::copy_file(path("renewed.pem"), path("server.pem"),
                             std::filesystem::copy_options::overwrite_existing);
  std::filesystem::copy_file(path("renewed.key"), path("server.key"),
                             std::filesystem::copy_options::overwrite_existing);
  ::kill(server.pid(), SIGHUP);
  ASSERT_TRUE(server.wait_for_output(
      [](const std::string& out) { return out.find("reloaded the TLS certificate") != std::string::npos; },
      std::chrono::seconds(20)))
      << server.output();

  EXPECT_EQ(list_releases(server.url(), token, "--ca " + path("other-ca.pem")).exit_code, 0);
  EXPECT_NE(list_releases(server.url(), token, "--ca " + path("ca.pem")).exit_code, 0);
  EXPECT_EQ(server.stop(SIGTERM, kStopDeadline), 0);
}

}  // namespace
}  // namespace cascade
