// name_this_thread: names the calling thread as `top -H`, perf and /proc/<pid>/task/*/comm show it.
#pragma once

#include <pthread.h>

#include <string>
#include <string_view>

namespace sluice {

// Linux keeps 15 bytes; a longer name keeps its start, which says the component.
inline void name_this_thread(std::string_view name) {
  std::string n(name.substr(0, 15));
  pthread_setname_np(pthread_self(), n.c_str());
}

}  // namespace sluice
