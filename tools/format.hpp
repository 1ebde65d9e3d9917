// How events and summaries look to a person at a terminal.
#pragma once

#include "engine/reactor.hpp"
#include "events/event.hpp"

#include <nlohmann/json.hpp>

#include <ostream>
#include <string>

namespace cascade::tools {

// "14:03:07.250" in UTC.
std::string clock_time(events::Timestamp at);
// "2026-11-28T14:03:07.250Z".
std::string iso_time(events::Timestamp at);

// One line of a release timeline: "dev  step deploy succeeded (0.41 s)".
std::string describe(const events::RecordedEvent& event);

// An event as the --json output and `cascade events` show it.
nlohmann::json event_json(const events::RecordedEvent& event);

// The summary table of a release, from its summary document.
void print_summary(std::ostream& out, const nlohmann::json& summary);

// Prints each new event as a timeline line as it becomes durable. Starts at
// a position chosen by its creator and keeps no checkpoint.
class TimelinePrinter final : public engine::Reactor {
 public:
  TimelinePrinter(std::ostream& out, std::uint64_t after) : out_(out), after_(after) {}
  std::string name() const override { return "timeline"; }
  Result<std::uint64_t> resume_position() override { return after_; }
  Status handle(const std::vector<events::RecordedEvent>& batch) override;

 private:
  std::ostream& out_;
  std::uint64_t after_;
};

}  // namespace cascade::tools
