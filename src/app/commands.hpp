// The command line: run, inlet, outlet, check, query, version.
#pragma once

namespace sluice::app {

int main(int argc, char** argv);

}  // namespace sluice::app
