// Results printed to standard output (`attn fmt`, `emit`, `explain`) are the command's
// product: losing them must not look like success. These write straight to descriptor 1 and
// check every write, so a full disk (`> /dev/full`), a closed stdout or a reader that went
// away is a FileError naming "standard output" and exit 1, never exit 0 with nothing written.
//
// SIGPIPE is ignored by the CLI (runtime/cli/main.cpp), so a reader that went away is EPIPE
// here, a clear error, not a silent death by signal.
#pragma once

#include <string_view>

namespace attn::support {

/// Writes all of `text` to standard output (descriptor 1), after flushing std::cout so that
/// the order of earlier output is kept. Throws FileError("standard output", ...).
void writeStandardOutput(std::string_view text);

/// Flushes std::cout and stdout; throws FileError("standard output", ...) when either has
/// failed since the start of the process (what was printed through them did not all arrive).
void flushStandardOutput();

}  // namespace attn::support
