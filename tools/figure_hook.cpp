#include "tools/figure_hook.hpp"

namespace kiln::tools::figure_hook {
namespace {

// A matplotlib backend module, as Jupyter's inline backend is one: Agg
// draws; show() hands the open figures over at once (so a figure shown and
// then closed still comes back, and Agg's "cannot show the figure" warning
// never appears), and figures still open at exit are handed over too. The
// exit hook is registered when pyplot loads the backend, after pyplot's own
// that closes every figure, so it runs before that one (atexit runs last
// first). A failure to save is reported on stderr, never raised: the
// program's outcome stays its own.
constexpr const char* kBackend = R"PY(# Kiln: matplotlib backend for the jail; figures shown or left open are saved for the server.
import atexit
import os
import sys

from matplotlib import pyplot
from matplotlib.backend_bases import FigureManagerBase
from matplotlib.backends.backend_agg import FigureCanvasAgg

FigureCanvas = FigureCanvasAgg
FigureManager = FigureManagerBase
_saved = 0


def _save_open_figures():
    global _saved
    directory = os.environ.get("KILN_FIGURE_DIR")
    if not directory:
        return
    for number in pyplot.get_fignums():
        _saved += 1
        path = os.path.join(directory, "figure-%04d.png" % _saved)
        try:
            pyplot.figure(number).savefig(path, format="png")
        except Exception as e:  # the quota, a removed directory...
            print("kiln: figure %d not saved: %s" % (number, e), file=sys.stderr)
    pyplot.close("all")


def show(*args, **kwargs):
    _save_open_figures()


atexit.register(_save_open_figures)
)PY";

}  // namespace

void install(sandbox::SandboxSpec& spec, const std::string& figure_dir) {
    const std::string dir = kModuleDir;
    spec.files.push_back({dir + "/kiln_mpl_backend.py", kBackend});
    spec.env.push_back("PYTHONPATH=" + dir);
    spec.env.push_back("MPLBACKEND=module://kiln_mpl_backend");
    spec.env.push_back("MPLCONFIGDIR=/tmp/matplotlib");
    spec.env.push_back("KILN_FIGURE_DIR=/workspace/" + figure_dir);
}

}  // namespace kiln::tools::figure_hook
