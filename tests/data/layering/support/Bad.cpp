// A fixture for the layering check: support/ is below codegen/.
#include "codegen/llvm/CpuBackend.h"
