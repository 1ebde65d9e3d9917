// Overloaded{lambdas...}: one visitor for std::visit out of several lambdas,
// one per alternative (the standard idiom; C++17 needs the deduction guide).
#pragma once

namespace cascade::events {

template <class... Fs>
struct Overloaded : Fs... {
  using Fs::operator()...;
};
template <class... Fs>
Overloaded(Fs...) -> Overloaded<Fs...>;

}  // namespace cascade::events
