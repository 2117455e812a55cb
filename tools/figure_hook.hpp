// How a Python run's matplotlib figures reach the server as images.
//
// The jail gets one small module in its own read-only root (/kiln/py, on
// PYTHONPATH): `kiln_mpl_backend`, the matplotlib backend (MPLBACKEND) it
// uses unless the program picks another, which draws with Agg and saves the
// figures shown or left open at exit as PNG files into a
// directory the server made in the workspace for this run only
// (.kiln/figures-<n>, hidden, so never linked), and the server reads and
// removes it after the run (rich_content.hpp bounds and checks each file).
//
// What the program can do with this is write PNG bytes there itself: it
// gets image items with pictures of its own choosing, which it could draw
// with matplotlib anyway. It cannot add any other kind of item, change a
// note, or reach outside its workspace: the server builds every item from
// the files' bytes, accepts only PNGs, and reads beneath the workspace with
// the file tools' confinement.
#pragma once

#include <string>

#include "sandbox/runtime.hpp"

namespace kiln::tools::figure_hook {

// Where the modules go in the jail.
inline constexpr const char* kModuleDir = "/kiln/py";

// Adds the module, PYTHONPATH, MPLBACKEND, MPLCONFIGDIR (matplotlib's
// cache in the jail's /tmp) and KILN_FIGURE_DIR=/workspace/<figure_dir>.
void install(sandbox::SandboxSpec& spec, const std::string& figure_dir);

}  // namespace kiln::tools::figure_hook
