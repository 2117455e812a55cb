#include "tools/figure_hook.hpp"

namespace kiln::tools::figure_hook {
namespace {

// Imported by Python at start-up when found on sys.path. It costs the
// program nothing until exit, and imports nothing of matplotlib unless the
// program did. A failure to save is reported on stderr, never raised: the
// program's own outcome stays what it was.
constexpr const char* kSiteCustomize = R"PY(# Kiln: figures left open are saved for the server when the program exits.
import atexit
import os
import sys

_kiln_saved = 0


def kiln_save_open_figures():
    """Writes every open matplotlib figure as PNG into $KILN_FIGURE_DIR, then closes them."""
    global _kiln_saved
    pyplot = sys.modules.get("matplotlib.pyplot")
    directory = os.environ.get("KILN_FIGURE_DIR")
    if pyplot is None or not directory:
        return
    for number in pyplot.get_fignums():
        _kiln_saved += 1
        path = os.path.join(directory, "figure-%04d.png" % _kiln_saved)
        try:
            pyplot.figure(number).savefig(path, format="png")
        except Exception as e:  # the quota, a removed directory...
            print("kiln: figure %d not saved: %s" % (number, e), file=sys.stderr)
    pyplot.close("all")


atexit.register(kiln_save_open_figures)
)PY";

// A matplotlib backend module (MPLBACKEND=module://kiln_mpl_backend), as
// Jupyter's inline backend is one: Agg draws, and show() hands the figures
// over at once, so a program that shows and then closes a figure still
// returns it, and Agg's "cannot show the figure" warning never appears.
constexpr const char* kBackend = R"PY(# Kiln: matplotlib backend for the jail; show() saves figures for the server.
from matplotlib.backend_bases import FigureManagerBase
from matplotlib.backends.backend_agg import FigureCanvasAgg
from sitecustomize import kiln_save_open_figures

FigureCanvas = FigureCanvasAgg
FigureManager = FigureManagerBase


def show(*args, **kwargs):
    kiln_save_open_figures()
)PY";

}  // namespace

void install(sandbox::SandboxSpec& spec, const std::string& figure_dir) {
    const std::string dir = kModuleDir;
    spec.files.push_back({dir + "/sitecustomize.py", kSiteCustomize});
    spec.files.push_back({dir + "/kiln_mpl_backend.py", kBackend});
    spec.env.push_back("PYTHONPATH=" + dir);
    spec.env.push_back("MPLBACKEND=module://kiln_mpl_backend");
    spec.env.push_back("MPLCONFIGDIR=/tmp/matplotlib");
    spec.env.push_back("KILN_FIGURE_DIR=/workspace/" + figure_dir);
}

}  // namespace kiln::tools::figure_hook
