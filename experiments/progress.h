// The live progress line of the training commands: on a terminal one line rewritten in place
// ("epoch 2/10  step 40/125  loss 0.4123  38.1 img/s  ETA 3m12s"); otherwise (a log file, CI) a
// plain line every `period_s` seconds and at the end of each epoch.
#pragma once

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <string>

namespace cxr::experiments {

class Progress {
 public:
  // `steps_per_epoch` and `epochs` size the ETA; `first_epoch` (1-based) is where a resumed run
  // starts, so the rate counts only this run's steps.
  Progress(int64_t epochs, int64_t steps_per_epoch, int64_t first_epoch, std::FILE* out = stderr,
           double period_s = 30.0);
  // After step `step` (1-based) of `epoch` (1-based), with the running mean loss (NaN: none) and
  // the images of this step. With a single epoch the line shows no epoch.
  void update(int64_t epoch, int64_t step, double mean_loss, int64_t images);
  // Ends the epoch's progress line on a terminal (the caller logs the epoch's summary).
  void end_epoch();
  // Seconds rendered as "3m12s", "1h04m", "42s".
  static std::string format_duration(double seconds);

 private:
  std::string line(int64_t epoch, int64_t step, double mean_loss) const;

  int64_t epochs_, steps_per_epoch_, first_epoch_;
  std::FILE* out_;
  double period_s_;
  bool tty_;
  bool open_line_ = false;
  int64_t steps_done_ = 0, images_ = 0;
  std::chrono::steady_clock::time_point start_, last_print_;
};

}  // namespace cxr::experiments
