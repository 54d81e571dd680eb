// A bounded queue of ready batches: worker threads fill the batches of a
// known sequence of requests ahead of the consumer (the trainer, the
// evaluator), at most `depth` of them at a time. The workers run at a lower
// scheduling priority (nice +10), so that on a machine whose cores the
// consumer's threads keep busy they decode in the consumer's idle moments
// rather than taking its cores.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <exception>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

#include "data/source.hpp"

namespace bsp {

class BatchQueue {
 public:
  // request(k), k in [0, count): the k-th batch, called from the workers
  // (it must be thread-safe; what its idx points to must outlive the queue).
  // workers: src.workers() unless given; 0 fills each batch in next().
  BatchQueue(const BatchSource& src, std::function<BatchRequest(int64_t)> request, int64_t count);
  BatchQueue(const BatchSource& src, std::function<BatchRequest(int64_t)> request, int64_t count, int workers);
  ~BatchQueue();
  BatchQueue(const BatchQueue&) = delete;
  BatchQueue& operator=(const BatchQueue&) = delete;

  // The next batch in sequence (valid until the next call). Rethrows a
  // worker's error for that batch.
  const Batch& next();
  // Seconds next() spent waiting for a batch that was not ready yet.
  double waited_s() const { return waited_s_; }

 private:
  void work();

  const BatchSource& src_;
  std::function<BatchRequest(int64_t)> request_;
  const int64_t count_;
  std::vector<Batch> slots_;
  std::vector<int64_t> ready_;               // per slot: the last batch filled into it (-1: none)
  std::vector<std::exception_ptr> errors_;   // per slot
  int64_t next_fill_ = 0;                    // next batch a worker starts
  int64_t released_ = 0;                     // batches before this one are done with
  int64_t next_take_ = 0;                    // consumer only: the next batch to hand out
  bool stop_ = false;
  std::mutex mu_;
  std::condition_variable filled_, freed_;
  std::vector<std::thread> threads_;
  double waited_s_ = 0;
};

}  // namespace bsp
