// The thread pool behind parallel_for / parallel_tasks (see threadpool.h).
#include "threadpool.h"

#include <atomic>
#include <condition_variable>
#include <cstdlib>
#include <mutex>
#include <thread>
#include <vector>

namespace dpo {
namespace {

// True on pool workers and on a caller while it runs its share of a job: a parallel_for issued from inside a task
// (e.g. a GEMM inside a per-head attention task) then runs inline instead of waiting on the busy pool.
thread_local bool in_pool_task = false;

struct TaskScope {
  bool prev = in_pool_task;
  TaskScope() { in_pool_task = true; }
  ~TaskScope() { in_pool_task = prev; }
};

class Pool {
 public:
  explicit Pool(int n) { start(n); }
  ~Pool() { stop(); }

  int size() const { return static_cast<int>(workers_.size()) + 1; }

  void resize(int n) {
    stop();
    start(n);
  }

  // Runs fn(task, tasks) for task in [0, tasks); the caller runs task 0 and any tasks beyond the pool's size.
  void run(int tasks, const std::function<void(int, int)>& fn) {
    const int nw = static_cast<int>(workers_.size());
    if (tasks <= 1 || nw == 0 || in_pool_task) {
      for (int t = 0; t < tasks; ++t) fn(t, tasks);
      return;
    }
    {
      std::lock_guard<std::mutex> lock(mu_);
      job_ = &fn;
      job_tasks_ = tasks;
      next_task_.store(1, std::memory_order_relaxed);
      pending_.store(nw, std::memory_order_relaxed);
      generation_.fetch_add(1, std::memory_order_release);
    }
    cv_.notify_all();
    {
      TaskScope scope;
      fn(0, tasks);
      drain();
    }
    // Wait for every worker to finish this generation (so `fn` may go out of scope safely).
    while (pending_.load(std::memory_order_acquire) != 0) {
      std::this_thread::yield();
    }
  }

 private:
  void drain() {
    for (;;) {
      int t = next_task_.fetch_add(1, std::memory_order_acq_rel);
      if (t >= job_tasks_) break;
      (*job_)(t, job_tasks_);
    }
  }

  // `seen` is the generation current when the worker was spawned, so a job dispatched before the thread first runs
  // is still picked up.
  void worker(uint64_t seen) {
    in_pool_task = true;
    for (;;) {
      // Spin for a while before sleeping: kernels come in quick succession during a training step.
      bool got = false;
      for (int i = 0; i < 20000; ++i) {
        if (generation_.load(std::memory_order_acquire) != seen || quit_.load(std::memory_order_acquire)) {
          got = true;
          break;
        }
#if defined(__x86_64__) || defined(__i386__)
        __builtin_ia32_pause();
#endif
      }
      if (!got) {
        std::unique_lock<std::mutex> lock(mu_);
        cv_.wait(lock, [&] { return generation_.load(std::memory_order_acquire) != seen || quit_.load(); });
      }
      if (quit_.load(std::memory_order_acquire)) return;
      seen = generation_.load(std::memory_order_acquire);
      drain();
      pending_.fetch_sub(1, std::memory_order_acq_rel);
    }
  }

  void start(int n) {
    quit_.store(false);
    const uint64_t g = generation_.load(std::memory_order_acquire);
    for (int i = 1; i < n; ++i) workers_.emplace_back([this, g] { worker(g); });
  }

  void stop() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      quit_.store(true);
    }
    cv_.notify_all();
    for (auto& w : workers_) w.join();
    workers_.clear();
  }

  std::vector<std::thread> workers_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::atomic<uint64_t> generation_{0};
  std::atomic<int> next_task_{0};
  std::atomic<int> pending_{0};
  std::atomic<bool> quit_{false};
  const std::function<void(int, int)>* job_ = nullptr;
  int job_tasks_ = 0;
};

int default_threads() {
  const char* env = std::getenv("DPO_NUM_THREADS");
  if (env != nullptr) {
    int n = std::atoi(env);
    if (n >= 1) return n;
  }
  unsigned hc = std::thread::hardware_concurrency();
  return hc == 0 ? 1 : static_cast<int>(hc);
}

Pool& pool() {
  static Pool p(default_threads());
  return p;
}

}  // namespace

int num_threads() { return pool().size(); }

bool in_parallel_task() { return in_pool_task; }

void set_num_threads(int n) {
  if (n < 1) n = 1;
  if (n != pool().size()) pool().resize(n);
}

void parallel_tasks(int tasks, const std::function<void(int, int)>& fn) { pool().run(tasks, fn); }

void parallel_for(int64_t n, const std::function<void(int64_t, int64_t)>& fn) {
  if (n <= 0) return;
  int tasks = num_threads();
  if (tasks > n) tasks = static_cast<int>(n);
  if (tasks <= 1) {
    fn(0, n);
    return;
  }
  pool().run(tasks, [&](int t, int nt) {
    int64_t begin = n * t / nt, end = n * (t + 1) / nt;
    if (begin < end) fn(begin, end);
  });
}

}  // namespace dpo
