#include "app/commands.hpp"

#include <cstdio>

namespace sluice::app {

int main(int, char**) {
  std::puts("sluice " SLUICE_VERSION);
  return 0;
}

}  // namespace sluice::app
