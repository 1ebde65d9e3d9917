#include "events/event_log.hpp"

#include "events/codec.hpp"

namespace cascade::events {

Status EventLog::read_each_verified(const std::string& stream, std::int64_t from_version,
                                    std::string expected_prev_hash,
                                    const std::function<Status(const RecordedEvent&)>& visit) {
  return read_each(stream, from_version, [&](const RecordedEvent& e) -> Status {
    CASCADE_TRY(verify_event(e, expected_prev_hash));
    expected_prev_hash = e.hash;
    return visit(e);
  });
}

}  // namespace cascade::events
