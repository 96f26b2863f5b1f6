// A small persistent thread pool for the native kernels.
// parallel_for(n, fn) splits [0, n) into one contiguous chunk per worker and runs fn(begin, end) on each,
// the calling thread taking the first chunk; it returns when all chunks are done. Size: DPO_NUM_THREADS, else the
// number of cores. Workers spin briefly before sleeping, so back-to-back kernels do not pay a wake-up each.
// A parallel_for called from inside a task runs inline (the pool does not nest), so a kernel may parallelise an outer
// loop and call threaded kernels such as sgemm inside it.
#pragma once
#include <cstdint>
#include <functional>

namespace dpo {

// Number of threads kernels may use (>= 1), including the caller.
int num_threads();
// Changes the pool size (>= 1). Not thread-safe against running kernels; call between kernels.
void set_num_threads(int n);
// Runs fn(begin, end) over [0, n) in up to num_threads() chunks. Runs inline when n is small or the pool has 1 thread.
void parallel_for(int64_t n, const std::function<void(int64_t, int64_t)>& fn);
// Like parallel_for, but chunk i is task i of exactly `tasks` tasks: fn(task, tasks). Used when a kernel partitions itself.
void parallel_tasks(int tasks, const std::function<void(int, int)>& fn);

}  // namespace dpo

namespace dpo {
// True when called from inside a parallel task (where nested parallel calls run inline).
bool in_parallel_task();
}  // namespace dpo
