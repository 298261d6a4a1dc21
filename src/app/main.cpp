// sluice: one engine for telemetry pipelines. Entry point; the commands live in app/commands.cpp.
#include "app/commands.hpp"

int main(int argc, char** argv) { return sluice::app::main(argc, argv); }
