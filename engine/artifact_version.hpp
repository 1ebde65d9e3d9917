// What an artifact version may look like. A version arrives from people (the
// API, the CLI) and from CI (the version of a purl on Kafka); it names a
// release, appears in logs and dashboards, and reaches steps as
// CASCADE_ARTIFACT_VERSION, so it is held to the characters of SemVer and of
// purl versions: letters, digits, '.', '-', '+', '_', '~' and ':', 1 to 128 of
// them. ':' is there for OCI digests (pkg:oci/shop@sha256%3A… names the version
// sha256:…); it is no shell syntax and cannot make a path.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

namespace cascade::engine {

constexpr std::size_t kMaxArtifactVersionLength = 128;

// What is wrong with `version`, or nullopt when it is a valid artifact version.
// The message names the first offending character and its position (1-based).
std::optional<std::string> artifact_version_problem(std::string_view version);

// Why the steps on this machine would find no artifact at `path`, or nullopt
// when a file or directory is there. Checked where a release is asked for
// (API, CLI, Kafka) so that a mistyped path is refused at once, not found
// out in the first stage; a path that vanishes later fails that stage.
std::optional<std::string> missing_artifact(const std::string& path);

}  // namespace cascade::engine
