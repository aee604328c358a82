// The live progress line (progress.h).
#include "experiments/progress.h"

#include <unistd.h>  // isatty, fileno

#include <cmath>

namespace cxr::experiments {

Progress::Progress(int64_t epochs, int64_t steps_per_epoch, int64_t first_epoch, std::FILE* out,
                   double period_s)
    : epochs_(epochs),
      steps_per_epoch_(steps_per_epoch),
      first_epoch_(first_epoch),
      out_(out),
      period_s_(period_s),
      tty_(::isatty(::fileno(out)) != 0),
      start_(std::chrono::steady_clock::now()),
      last_print_(start_) {}

std::string Progress::format_duration(double s) {
  if (!std::isfinite(s) || s < 0) return "?";
  const int64_t t = int64_t(std::llround(s));
  char buf[32];
  if (t >= 3600)
    std::snprintf(buf, sizeof buf, "%lldh%02lldm", (long long)(t / 3600),
                  (long long)(t % 3600 / 60));
  else if (t >= 60)
    std::snprintf(buf, sizeof buf, "%lldm%02llds", (long long)(t / 60), (long long)(t % 60));
  else
    std::snprintf(buf, sizeof buf, "%llds", (long long)t);
  return buf;
}

std::string Progress::line(int64_t epoch, int64_t step, double mean_loss) const {
  const double elapsed =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  const int64_t total = (epochs_ - first_epoch_ + 1) * steps_per_epoch_;
  const double eta =
      steps_done_ > 0 ? elapsed / double(steps_done_) * double(total - steps_done_) : NAN;
  // One-pass jobs (sampling) show no epoch, and no loss when it is NaN.
  char epoch_part[48] = "", loss_part[32] = "";
  if (epochs_ > 1)
    std::snprintf(epoch_part, sizeof epoch_part, "epoch %lld/%lld  ", (long long)epoch,
                  (long long)epochs_);
  if (!std::isnan(mean_loss)) std::snprintf(loss_part, sizeof loss_part, "loss %.4f  ", mean_loss);
  char buf[200];
  std::snprintf(buf, sizeof buf, "%sstep %lld/%lld  %s%.1f img/s  ETA %s", epoch_part,
                (long long)step, (long long)steps_per_epoch_, loss_part,
                elapsed > 0 ? double(images_) / elapsed : 0.0, format_duration(eta).c_str());
  return buf;
}

void Progress::update(int64_t epoch, int64_t step, double mean_loss, int64_t images) {
  ++steps_done_;
  images_ += images;
  const auto now = std::chrono::steady_clock::now();
  if (tty_) {
    std::fprintf(out_, "\r%s\033[K", line(epoch, step, mean_loss).c_str());
    open_line_ = true;
  } else if (std::chrono::duration<double>(now - last_print_).count() >= period_s_ ||
             step == steps_per_epoch_) {
    std::fprintf(out_, "%s\n", line(epoch, step, mean_loss).c_str());
    last_print_ = now;
  }
  std::fflush(out_);
}

void Progress::end_epoch() {
  if (open_line_) std::fputc('\n', out_);
  open_line_ = false;
  std::fflush(out_);
}

}  // namespace cxr::experiments
