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
// (data {"step","at","stream","text"}), then `event: end` (data {"release",
// "stage","attempt"}) and the stream closes.
class SseLineSink final : public adapters::LineSink {
 public:
  explicit SseLineSink(std::shared_ptr<SseStream> stream) : stream_(std::move(stream)) {}
  bool line(const std::string& step, const engine::LogLine& line) override {
    return stream_->send("", "line",
                         nlohmann::json{{"step", step}, {"at", line.at}, {"stream", line.stream}, {"text", line.text}}.dump());
  }
  void end(const std::string& release_id, const std::string& stage, int attempt) override {
    stream_->send("", "end", nlohmann::json{{"release", release_id}, {"stage", stage}, {"attempt", attempt}}.dump());
    stream_->close();
  }
  bool closed() const override { return stream_->closed(); }

 private:
  std::shared_ptr<SseStream> stream_;
};

}  // namespace cascade::adapters::http::api
