// The canonical JSON codec and the hash chain.
//
// Canonical bytes: the envelope as one JSON object with keys sorted, no
// whitespace, integers only — every field except `position` (where the event
// sits) and `hash` (what is computed). hash = hex SHA-256 of those bytes, and
// they include prev_hash, so each event seals the one before it in its stream.
// What a log stores is the canonical object plus its "hash" member.
#pragma once

#include "events/event.hpp"
#include "events/result.hpp"

#include <string>
#include <string_view>
#include <vector>

namespace cascade::events {

nlohmann::json payload_to_json(const Event& event);
// kInvalidArgument for an unknown type, an unsupported schema version or a
// payload that does not have the type's shape.
Result<Event> payload_from_json(std::string_view type, int schema_version,
                                const nlohmann::json& payload);

// The members every event object has — ids, stream, version, time, actor,
// hashes — read into `event`; not its position, type, schema version or
// data. Throws nlohmann::json::exception for a missing or mistyped member.
// Shared by the stored form and the exported one (tools/format.cpp).
void envelope_from_json(const nlohmann::json& j, RecordedEvent& event);

std::string canonical_bytes(const RecordedEvent& event);
std::string compute_hash(const RecordedEvent& event);

// Fills event.hash and returns the bytes to store.
std::string seal(RecordedEvent& event);
// Reads stored bytes; kDataLoss (naming the position) when they are not a
// well-formed event. Does not check the hash: see verify_chain.
Result<RecordedEvent> decode(std::string_view stored, std::uint64_t position);

// decode() into `out`, reusing its storage (a replay decodes every event of a
// stream into one RecordedEvent). On error `out` is unspecified.
Status decode_into(std::string_view stored, std::uint64_t position, RecordedEvent& out);

// verify_chain for one event: it links to `expected_prev_hash` and its hash
// matches its content. Allocates nothing for an intact event.
Status verify_event(const RecordedEvent& event, std::string_view expected_prev_hash);

// decode_into() and verify_event() in one: the hash is taken over the stored
// bytes as they lie (the canonical bytes are the stored ones without the
// "hash" member), not over bytes encoded again from the decoded event. Bytes
// that are not in the exact canonical layout are decoded by nlohmann and
// verified as verify_event does, so a tampered event fails either way.
Status decode_verified(std::string_view stored, std::uint64_t position, std::string_view expected_prev_hash,
                       RecordedEvent& out);

// Checks that each event's hash matches its bytes and links to the previous
// one, for events of one stream read from its first version (or from
// `expected_prev_hash` when the slice starts later). kDataLoss names the first
// broken link: stream, version, expected and found hash.
Status verify_chain(const std::vector<RecordedEvent>& events, std::string expected_prev_hash = "");

std::string sha256_hex(std::string_view bytes);

// SHA-256 over data that arrives in pieces (a step's log, line by line).
class Sha256 {
 public:
  Sha256();
  ~Sha256();
  Sha256(const Sha256&) = delete;
  Sha256& operator=(const Sha256&) = delete;
  void update(std::string_view bytes);
  // The hex digest of everything updated so far; the hasher may not be used after.
  std::string finish();
  // The same digest, the hasher left as it was: one pass over a long input
  // can compare the digest of each of its prefixes.
  std::string digest_so_far() const;

 private:
  void* context_;  // EVP_MD_CTX, kept out of this header
};
// A random RFC 4122 version-4 UUID.
std::string random_uuid();
// A UUID derived from `seed` (SHA-256, version bits 8 per RFC 9562's custom
// layout): the same seed gives the same id, which makes retried commands
// produce the same event ids.
std::string uuid_from_seed(std::string_view seed);

}  // namespace cascade::events
