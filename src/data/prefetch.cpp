#include "data/prefetch.hpp"

#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <chrono>

#include "core/error.hpp"

namespace bsp {

BatchQueue::BatchQueue(const BatchSource& src, std::function<BatchRequest(int64_t)> request, int64_t count)
    : BatchQueue(src, std::move(request), count, src.workers()) {}

BatchQueue::BatchQueue(const BatchSource& src, std::function<BatchRequest(int64_t)> request, int64_t count,
                       int workers)
    : src_(src), request_(std::move(request)), count_(count) {
  // Two batches beyond one per worker: each worker can start its next batch
  // while the consumer holds one.
  const size_t depth = workers > 0 ? static_cast<size_t>(workers) + 2 : 1;
  slots_.resize(depth);
  ready_.assign(depth, -1);
  errors_.resize(depth);
  for (int i = 0; i < workers; ++i) threads_.emplace_back([this] { work(); });
}

BatchQueue::~BatchQueue() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  freed_.notify_all();
  for (std::thread& t : threads_) t.join();
}

void BatchQueue::work() {
  // A nice value applies to one thread on Linux (its thread id); failing
  // (not permitted) only leaves the priority as it is.
  setpriority(PRIO_PROCESS, static_cast<id_t>(syscall(SYS_gettid)), 10);
  for (;;) {
    int64_t k = 0;
    {
      std::unique_lock<std::mutex> lock(mu_);
      // Batches released_ .. next_fill_ - 1 hold slots (the consumer holds
      // released_ once it has it); slot k % depth is free when k < released_ + depth.
      freed_.wait(lock, [&] {
        return stop_ || (next_fill_ < count_ && next_fill_ < released_ + static_cast<int64_t>(slots_.size()));
      });
      if (stop_) return;
      k = next_fill_++;
    }
    const size_t slot = static_cast<size_t>(k) % slots_.size();
    std::exception_ptr err;
    try {
      src_.fill(request_(k), slots_[slot]);
    } catch (...) {
      err = std::current_exception();
    }
    {
      std::lock_guard<std::mutex> lock(mu_);
      errors_[slot] = err;
      ready_[slot] = k;
    }
    filled_.notify_all();
  }
}

const Batch& BatchQueue::next() {
  if (next_take_ >= count_) fail("internal: batch {} asked of a queue of {}", next_take_, count_);
  const int64_t k = next_take_++;
  const size_t slot = static_cast<size_t>(k) % slots_.size();
  if (threads_.empty()) {
    src_.fill(request_(k), slots_[slot]);
    return slots_[slot];
  }
  {
    std::unique_lock<std::mutex> lock(mu_);
    released_ = k;  // the batch handed out last (k - 1) is done with: its slot may be refilled
    freed_.notify_all();
    if (ready_[slot] != k) {
      const auto t0 = std::chrono::steady_clock::now();
      filled_.wait(lock, [&] { return ready_[slot] == k; });
      waited_s_ += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    }
    if (errors_[slot]) std::rethrow_exception(errors_[slot]);
  }
  return slots_[slot];
}

}  // namespace bsp
