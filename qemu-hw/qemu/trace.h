#include "trace/trace-hw_rocketsim.h"
