// A fixture for the layering check (ctest layering-catches): each include breaks a rule.
#include "codegen/cuda/KernelCache.h"
#include "runtime/data/DataDir.h"
