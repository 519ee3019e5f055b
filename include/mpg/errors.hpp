// errors.hpp: the exceptions mpg throws on misuse, as Go panics.
#pragma once
#include <stdexcept>

namespace mpg {

// ClosedChannel: send on a closed channel (also a sender parked when the channel closes).
struct ClosedChannel : std::logic_error {
  using std::logic_error::logic_error;
};
// ChannelMisuse: close of a closed channel.
struct ChannelMisuse : std::logic_error {
  using std::logic_error::logic_error;
};
// SyncMisuse: unlock of an unlocked Mutex, negative WaitGroup counter, Semaphore over-release.
struct SyncMisuse : std::logic_error {
  using std::logic_error::logic_error;
};
// RuntimeMisuse: a runtime call made where it cannot work (a blocking call outside a
// goroutine, mpg::run inside mpg::run).
struct RuntimeMisuse : std::logic_error {
  using std::logic_error::logic_error;
};

}  // namespace mpg
