// Following a step's log over HTTP (GET …/stages/{stage}/logs?follow=true):
// the runtime's transport-neutral LogFollowHub (adapters/runtime/log_follow.hpp)
// hands lines to a LineSink; this one writes them to an event stream.
#pragma once

#include "adapters/http/sse_stream.hpp"
#include "adapters/runtime/log_follow.hpp"

#include <memory>
#include <string>

namespace cascade::adapters::http::api {

// A step log followed onto an event stream: each line a frame `event: line`
// with id "<step>:<line>" (a reconnecting client's Last-Event-ID resumes
// after it; data {"step","at","stream","text"}), then `event: end` (data
// {"release","stage","attempt"}) and the stream closes.
class SseLineSink final : public adapters::LineSink {
 public:
  explicit SseLineSink(std::shared_ptr<SseStream> stream) : stream_(std::move(stream)) {}
  bool line(const std::string& step, int step_index, std::uint64_t line_index, const engine::LogLine& line) override {
    return stream_->send(std::to_string(step_index) + ":" + std::to_string(line_index), "line",
                         nlohmann::json{{"step", step}, {"at", line.at}, {"stream", line.stream}, {"text", line.text}}.dump());
  }
  void end(const std::string& release_id, const std::string& stage, int attempt) override {
    stream_->send("", "end", nlohmann::json{{"release", release_id}, {"stage", stage}, {"attempt", attempt}}.dump());
    stream_->close();
  }
  bool closed() const override { return stream_->closed(); }
  std::size_t room() const override {
    const std::size_t budget = stream_->page_budget_bytes();
    const std::size_t queued = stream_->backlog_bytes();
    return queued >= budget ? 0 : budget - queued;
  }

 private:
  std::shared_ptr<SseStream> stream_;
};

}  // namespace cascade::adapters::http::api
