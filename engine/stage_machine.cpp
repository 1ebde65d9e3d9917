#include "engine/msm_config.hpp"  // first: configures MPL before any Boost header

#include "engine/stage_machine.hpp"

#include <boost/mpl/for_each.hpp>
#include <boost/mpl/vector.hpp>
#include <boost/msm/back/state_machine.hpp>
#include <boost/msm/front/functor_row.hpp>
#include <boost/msm/front/state_machine_def.hpp>

#include <algorithm>

namespace cascade::engine {
namespace {

namespace msm = boost::msm;
namespace mpl = boost::mpl;
using msm::front::none;
using msm::front::Row;
using namespace cascade::events;

template <StageState S>
struct Named : msm::front::state<> {
  static constexpr StageState kState = S;
};

struct NotStarted : Named<StageState::kNotStarted> {};
struct Triggered : Named<StageState::kTriggered> {};
struct AwaitingPreApproval : Named<StageState::kAwaitingPreApproval> {};
struct Approved : Named<StageState::kApproved> {};
struct Deploying : Named<StageState::kDeploying> {};
struct Succeeded : Named<StageState::kSucceeded> {};
struct Failed : Named<StageState::kFailed> {};
struct Rejected : Named<StageState::kRejected> {};

struct StageMachineDefinition : msm::front::state_machine_def<StageMachineDefinition> {
  using initial_state = NotStarted;
  // An exception must escape rather than be reported as a handled event.
  typedef int no_exception_thrown;

  // clang-format off
  struct transition_table : mpl::vector<
    //   Start                Event                 Next
    Row< NotStarted         , StageTriggered      , Triggered           >,
    // A redeploy starts a new attempt from a finished state.
    Row< Succeeded          , StageTriggered      , Triggered           >,
    Row< Failed             , StageTriggered      , Triggered           >,
    Row< Rejected           , StageTriggered      , Triggered           >,
    Row< Triggered          , ApprovalRequested   , AwaitingPreApproval >,
    Row< Triggered          , DeploymentStarted   , Deploying           >,
    Row< AwaitingPreApproval, ApprovalGranted     , Approved            >,
    Row< AwaitingPreApproval, ApprovalRejected    , Rejected            >,
    Row< Approved           , DeploymentStarted   , Deploying           >,
    //   Steps progress inside Deploying (internal transitions: Next = none).
    Row< Deploying          , StepStarted         , none                >,
    Row< Deploying          , StepSucceeded       , none                >,
    Row< Deploying          , StepFailed          , none                >,
    Row< Deploying          , DeploymentSucceeded , Succeeded           >,
    Row< Deploying          , DeploymentFailed    , Failed              >
  > {};
  // clang-format on

  // A refusal is an answer, not a fault: decide turns it into an error that
  // names the stage, its state and what was expected.
  template <class Fsm, class Event>
  void no_transition(const Event&, Fsm&, int) {}
};

using Machine = msm::back::state_machine<StageMachineDefinition>;
using Table = StageMachineDefinition::transition_table;

// State ids follow the order in which MSM meets states in the table; map each
// id to its stable name once.
std::vector<StageState> state_names_by_id() {
  std::vector<StageState> names(mpl::size<Machine::stt>::value + 1, StageState::kNotStarted);
  mpl::for_each<Table>([&names](auto row) {
    using R = decltype(row);
    using Source = typename R::Source;
    names.at(static_cast<std::size_t>(msm::back::get_state_id<Machine::stt, Source>::value)) = Source::kState;
    if constexpr (!std::is_same_v<typename R::Target, none>) {
      using Target = typename R::Target;
      names.at(static_cast<std::size_t>(msm::back::get_state_id<Machine::stt, Target>::value)) = Target::kState;
    }
  });
  return names;
}

template <class Payload>
constexpr bool kIsStageEvent = !std::is_same_v<Payload, PipelineDefined> && !std::is_same_v<Payload, ReleaseCreated>;

}  // namespace

struct StageMachine::Impl {
  Machine machine;
  Impl() { machine.start(); }
};

StageMachine::StageMachine() : impl_(std::make_unique<Impl>()) {}
StageMachine::~StageMachine() = default;
StageMachine::StageMachine(const StageMachine& other) : impl_(std::make_unique<Impl>(*other.impl_)) {}
StageMachine& StageMachine::operator=(const StageMachine& other) {
  if (this != &other) impl_ = std::make_unique<Impl>(*other.impl_);
  return *this;
}
StageMachine::StageMachine(StageMachine&&) noexcept = default;
StageMachine& StageMachine::operator=(StageMachine&&) noexcept = default;

bool StageMachine::accept(const Event& event) {
  return std::visit(
      [this](const auto& payload) {
        using Payload = std::decay_t<decltype(payload)>;
        if constexpr (kIsStageEvent<Payload>) {
          return impl_->machine.process_event(payload) == msm::back::HANDLED_TRUE;
        } else {
          return false;
        }
      },
      event);
}

bool StageMachine::would_accept(const Event& event) const {
  StageMachine probe(*this);
  return probe.accept(event);
}

StageState StageMachine::state() const {
  static const std::vector<StageState> kNames = state_names_by_id();
  return kNames.at(static_cast<std::size_t>(impl_->machine.current_state()[0]));
}

std::vector<StageState> StageMachine::states_accepting(std::string_view event_type) {
  std::vector<StageState> states;
  mpl::for_each<Table>([&](auto row) {
    using R = decltype(row);
    if (R::Evt::kType == event_type &&
        std::find(states.begin(), states.end(), R::Source::kState) == states.end()) {
      states.push_back(R::Source::kState);
    }
  });
  return states;
}

std::string_view to_string(StageState state) {
  switch (state) {
    case StageState::kNotStarted: return "NotStarted";
    case StageState::kTriggered: return "Triggered";
    case StageState::kAwaitingPreApproval: return "AwaitingPreApproval";
    case StageState::kApproved: return "Approved";
    case StageState::kDeploying: return "Deploying";
    case StageState::kSucceeded: return "Succeeded";
    case StageState::kFailed: return "Failed";
    case StageState::kRejected: return "Rejected";
  }
  return "Unknown";
}

}  // namespace cascade::engine
