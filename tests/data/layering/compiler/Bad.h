// A fixture for the layering check: the compiler is a leaf.
#include "compiler/IR.h"
#include "support/ContentHash.h"
