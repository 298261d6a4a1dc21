// The flow tables' layout (sinks::FlowTablesConfig) as an outlet configuration asks for it.
#pragma once

#include "config/config.hpp"
#include "sinks/flow_tables.hpp"

namespace sluice::app {

sinks::FlowTablesConfig flow_tables_config(const config::OutletConfig& outlet);

}  // namespace sluice::app
