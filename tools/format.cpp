#include "tools/format.hpp"

#include "events/codec.hpp"

#include <ctime>
#include <iomanip>
#include <sstream>

namespace cascade::tools {

using namespace cascade::events;

namespace {

template <class... Fs>
struct Overloaded : Fs... {
  using Fs::operator()...;
};
template <class... Fs>
Overloaded(Fs...) -> Overloaded<Fs...>;

std::tm utc(Timestamp at) {
  const std::time_t seconds = static_cast<std::time_t>(at / 1000);
  std::tm tm{};
  gmtime_r(&seconds, &tm);
  return tm;
}

std::string seconds(std::int64_t ms) {
  std::ostringstream out;
  out << std::fixed << std::setprecision(2) << static_cast<double>(ms) / 1000.0 << " s";
  return out.str();
}

std::string joined(const std::vector<std::string>& items) {
  std::string out;
  for (const auto& item : items) out += (out.empty() ? "" : ", ") + item;
  return out;
}

std::string with_comment(const std::string& comment) { return comment.empty() ? "" : ": \"" + comment + "\""; }

}  // namespace

std::string clock_time(Timestamp at) {
  std::ostringstream out;
  const std::tm tm = utc(at);
  out << std::put_time(&tm, "%H:%M:%S") << "." << std::setw(3) << std::setfill('0') << (at % 1000);
  return out.str();
}

std::string iso_time(Timestamp at) {
  if (at == 0) return "";
  std::ostringstream out;
  const std::tm tm = utc(at);
  out << std::put_time(&tm, "%Y-%m-%dT%H:%M:%S") << "." << std::setw(3) << std::setfill('0') << (at % 1000) << "Z";
  return out.str();
}

std::string describe(const RecordedEvent& event) {
  return std::visit(
      Overloaded{
          [](const PipelineDefined& e) {
            return "pipeline " + e.pipeline + " defined (version " + std::to_string(e.version) + ")";
          },
          [&](const ReleaseCreated& e) {
            return "release " + e.release_id + " (" + e.name + ") created from " + e.pipeline + " v" +
                   std::to_string(e.pipeline_version) + ", artifact " + e.artifact.version + " (by " +
                   e.requested_by + ")";
          },
          [](const StageTriggered& e) {
            return e.stage + " triggered: " + e.reason + (e.attempt > 1 ? " (attempt " + std::to_string(e.attempt) + ")" : "");
          },
          [](const ApprovalRequested& e) {
            std::string line = (e.phase == "post" ? "post-deployment approval pending: " : "approval pending: ") +
                               e.stage + " (approvers: " + joined(e.approvers);
            if (e.required > 1) line += "; " + std::to_string(e.required) + " needed";
            if (e.order == "sequential") line += "; in order";
            return line + ")";
          },
          [](const ApprovalGranted& e) {
            std::string line = e.stage + " approved by " + e.approver;
            if (!e.on_behalf_of.empty() && e.on_behalf_of != e.approver) line += " for " + e.on_behalf_of;
            if (e.defer_until != 0) line += ", deploying at " + iso_time(e.defer_until);
            return line + with_comment(e.comment);
          },
          [](const ApprovalRejected& e) { return e.stage + " rejected by " + e.approver + with_comment(e.comment); },
          [](const ApprovalTimedOut& e) { return e.stage + " " + e.phase + "-deployment approval timed out"; },
          [](const ApprovalSkipped& e) { return e.stage + " approval skipped: " + e.reason; },
          [](const DeferralElapsed& e) { return e.stage + " deferral over: may deploy now"; },
          [](const DeploymentStarted& e) {
            return e.stage + " deploying (attempt " + std::to_string(e.attempt) + ")";
          },
          [](const StepStarted& e) {
            return e.stage + " step " + e.step + " started" +
                   (e.try_number > 1 ? " (try " + std::to_string(e.try_number) + ")" : "");
          },
          [](const StepSucceeded& e) {
            return e.stage + " step " + e.step + " succeeded (" + seconds(e.duration_ms) + ")";
          },
          [](const StepFailed& e) {
            return e.stage + " step " + e.step + " failed: " + e.reason + " (" + seconds(e.duration_ms) + ")" +
                   (e.will_retry ? ", will retry" : "") + (e.continued ? ", continuing" : "");
          },
          [](const StepSkipped& e) { return e.stage + " step " + e.step + " skipped: " + e.reason; },
          [](const DeploymentSucceeded& e) { return e.stage + (e.partial ? " partially deployed" : " deployed"); },
          [](const DeploymentFailed& e) { return e.stage + " failed: " + e.reason; },
          [](const DeploymentCanceled& e) { return e.stage + " deployment canceled: " + e.reason; },
          [](const StageCanceled& e) { return e.stage + " canceled: " + e.reason; },
          [](const ReleaseAbandoned& e) { return "release abandoned: " + e.reason; },
      },
      event.data);
}

nlohmann::json event_json(const RecordedEvent& e) {
  return {{"position", e.position},         {"stream", e.stream},
          {"version", e.version},           {"event_id", e.event_id},
          {"type", type_name(e.data)},      {"recorded_at", e.recorded_at},
          {"time", iso_time(e.recorded_at)}, {"actor", e.actor},
          {"command_id", e.command_id},     {"causation_id", e.causation_id},
          {"correlation_id", e.correlation_id}, {"data", payload_to_json(e.data)},
          {"prev_hash", e.prev_hash},       {"hash", e.hash}};
}

void print_summary(std::ostream& out, const nlohmann::json& summary) {
  out << "Release " << summary["id"].get<std::string>() << "  (" << summary["pipeline"].get<std::string>() << " v"
      << summary["pipeline_version"].get<std::int64_t>() << ", artifact "
      << summary["artifact"]["version"].get<std::string>() << ")  status: " << summary["status"].get<std::string>()
      << "\n";
  out << std::left << std::setw(8) << "STAGE" << std::setw(21) << "STATUS" << std::setw(8) << "ATTEMPT"
      << std::setw(14) << "STARTED" << std::setw(14) << "FINISHED" << std::setw(10) << "STEPS"
      << "DETAILS\n";
  for (const auto& stage : summary["stages"]) {
    std::size_t done = 0;
    for (const auto& step : stage["steps"]) done += step["status"] == "Succeeded" ? 1 : 0;
    std::string details = stage["trigger_reason"].get<std::string>();
    for (const auto& approval : stage["approvals"]) {
      details += "; " + approval["decision"].get<std::string>() + " by " + approval["approver"].get<std::string>();
    }
    if (!stage["failure_reason"].get<std::string>().empty()) details += "; " + stage["failure_reason"].get<std::string>();
    auto when = [](const nlohmann::json& at) {
      return at.get<Timestamp>() == 0 ? std::string("-") : clock_time(at.get<Timestamp>());
    };
    out << std::left << std::setw(8) << stage["name"].get<std::string>() << std::setw(21)
        << stage["status"].get<std::string>() << std::setw(8) << stage["attempt"].get<int>() << std::setw(14)
        << when(stage["started_at"]) << std::setw(14) << when(stage["finished_at"]) << std::setw(10)
        << (std::to_string(done) + "/" + std::to_string(stage["steps"].size())) << details << "\n";
  }
}

Status TimelinePrinter::handle(const std::vector<RecordedEvent>& batch) {
  for (const RecordedEvent& event : batch) {
    const std::string& who = event.correlation_id;
    out_ << clock_time(event.recorded_at) << "  " << std::left << std::setw(14) << who << " " << describe(event) << "\n";
  }
  out_.flush();
  return success();
}

}  // namespace cascade::tools
