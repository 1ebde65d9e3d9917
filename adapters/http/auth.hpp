// Who is calling, and what they may do: bearer tokens checked against a users
// file that holds only the tokens' SHA-256 hashes.
//
// Roles are ordered, and each includes the ones below it:
//
//   viewer    reads: releases, pipelines, summaries, logs, event streams, metrics
//   releaser  + creates releases, deploys manual stages, cancels/abandons
//   approver  + approves or rejects stages (the engine still checks that the
//               user is among the stage's approvers)
//   admin     + defines pipelines, administers users
//
// so admin ⊇ approver ⊇ releaser ⊇ viewer: whoever may approve a deployment may
// also start one, and nobody is surprised that an admin can do everything.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "events/result.hpp"

namespace cascade::adapters::http {

enum class Role { kViewer = 0, kReleaser = 1, kApprover = 2, kAdmin = 3 };

// "viewer", "releaser", "approver", "admin".
std::string_view to_string(Role role);
// The role named exactly so (lower case), or nullopt.
std::optional<Role> parse_role(std::string_view name);

// An authenticated caller. The name is the identity the engine records (the
// approver of an approval is always this name, never a field of the request).
struct User {
  std::string name;
  std::vector<Role> roles;
  // The approver groups (of pipelines' `groups`) the users file says this
  // user belongs to; an approval naming one of them may be given by this user.
  std::vector<std::string> groups = {};

  // True when one of the roles is `needed` or above it.
  bool has_role(Role needed) const;
  bool in_group(std::string_view group) const;
  // Why a request that needs `needed` is refused, in the words of the users
  // file: "this needs the releaser role (you have viewer)".
  std::string missing_role(Role needed) const;
};

// One entry of the users file: a user, the SHA-256 of their token, and the
// approver groups they belong to.
struct UserRecord {
  std::string name;
  std::vector<Role> roles;
  std::string token_sha256;  // 64 lower-case hex digits
  std::vector<std::string> groups = {};
};

// Lower-case hex SHA-256 of `data`.
std::string sha256_hex(std::string_view data);

// True when a and b hold the same bytes; for equal lengths the time taken does
// not depend on where they differ (OpenSSL's CRYPTO_memcmp). Different lengths
// return false at once: lengths are not secret here (hashes are 64 digits).
bool constant_time_equal(std::string_view a, std::string_view b);

// A new bearer token: 32 bytes from OpenSSL's CSPRNG as 64 lower-case hex
// digits. kUnavailable when the CSPRNG cannot be seeded.
Result<std::string> generate_admin_token();

// Parses a users file:
//   {"users": [{"name": "alice", "roles": ["approver"], "token_sha256": "<64 hex>",
//               "groups": ["release-managers"]}]}
// `groups` is optional (default none); group names follow the rule of user
// names, each listed once per user.
// Names match [A-Za-z0-9][A-Za-z0-9._@-]{0,127} and are unique; every user has
// at least one known role; hashes are 64 hex digits (upper case is accepted and
// lower-cased) and unique. Unknown fields are rejected. Errors are
// kInvalidArgument with one Problem per fault, each with its path, e.g.
// {"users[1].roles[0]", "unknown role 'aprover' (did you mean 'approver'?)"}.
Result<std::vector<UserRecord>> parse_users(std::string_view json_text);

// The users file text for `users` (pretty-printed, trailing newline).
std::string render_users(const std::vector<UserRecord>& users);

// Reads and parses the users file at `path`. kNotFound when it does not exist;
// kUnavailable when it cannot be read; parse errors as parse_users, with the
// path of the file in the message.
Result<std::vector<UserRecord>> load_users_file(const std::string& path);

// For the first start of `cascade serve`: when no file exists at `path`,
// creates it (mode 0600, written to a temporary file and linked into place, so
// a crash or a concurrent creator never leaves a partial file) holding one
// user `admin_name` with the admin role and the hash of a fresh token, and
// returns that token — the only time it exists outside the caller's hands; the
// caller prints it once and must not log it. Returns nullopt, and changes
// nothing, when the file already exists. kUnavailable on I/O errors.
Result<std::optional<std::string>> create_users_file_if_missing(const std::string& path,
                                                                const std::string& admin_name = "admin");

// Writes `users` to `path` atomically: a temporary file beside it (mode
// 0600), synced, renamed over `path`, and the directory synced — a reader or
// a crash sees the old file or the new one, never a mix. kUnavailable on I/O
// errors (nothing replaced).
Status write_users_file(const std::string& path, const std::vector<UserRecord>& users);

// `cascade users add`: adds user `name` (creating the file when missing) with
// `roles` and `groups`, a fresh token, and returns the token — its only copy:
// the file keeps its SHA-256. kAlreadyExists when the user exists;
// kInvalidArgument for a bad name, group or no role; the file is unchanged on
// any error. Concurrent edits of one file are serialised (flock on its
// directory), so none is lost.
Result<std::string> add_user(const std::string& path, const std::string& name, const std::vector<Role>& roles,
                             const std::vector<std::string>& groups);

// `cascade users rotate`: gives user `name` a fresh token (returned, as
// add_user) and drops the old one's hash, so the old token stops working for
// any server that (re)loads the file. kNotFound for an unknown user or file.
Result<std::string> rotate_user_token(const std::string& path, const std::string& name);

// The result of authenticate(): the user, or why there is none (for the 401).
struct Authentication {
  std::optional<User> user;
  // When !user: a message for the client that never contains the token.
  std::string failure;
  // When !user: true when a bearer token was presented but matched no user
  // (WWW-Authenticate then carries error="invalid_token").
  bool invalid_token = false;
};

// Checks bearer tokens against user records. Immutable after construction, so
// thread-safe.
class Authenticator {
 public:
  // REQUIRES: the records are valid (as parse_users returns them); a record
  // whose hash is not 64 hex digits can never match.
  explicit Authenticator(std::vector<UserRecord> users);

  // `authorization` is the Authorization header's value ("" when absent). A
  // user only for "Bearer <token>" (scheme case-insensitive) where the SHA-256
  // of the token equals a record's hash. The presented hash is compared with
  // every record, each in constant time and without stopping at a match.
  Authentication authenticate(std::string_view authorization) const;

  std::size_t size() const { return users_.size(); }
  // Whether `name` is a user, or a group some user belongs to.
  bool knows(std::string_view name) const;

 private:
  struct Entry {
    User user;
    std::array<unsigned char, 32> hash{};
    bool valid = false;
  };
  std::vector<Entry> users_;
};

}  // namespace cascade::adapters::http
