// The help text of a config's key list (config_keys.h).
#include "experiments/config_keys.h"

#include <sstream>

namespace cxr::experiments {

std::string keys_help(const std::vector<KeyDoc>& docs) {
  std::ostringstream os;
  os << "\nConfig keys (JSON file via --config; override any with --set key=value):\n";
  for (const auto& d : docs)
    os << "  " << d.key << " (" << d.type << ", default " << d.default_value << ")\n      "
       << d.help << "\n";
  return os.str();
}

}  // namespace cxr::experiments
