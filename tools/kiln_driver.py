"""Kiln's persistent Python interpreter: the program inside a live jail.

The server (tools/live_interpreter.cpp) starts `python3 /kiln/kiln_driver.py`
in a jail that lives across calls and talks to it over the jail's pipes:
each message is a 4-byte big-endian length and that many bytes of UTF-8
JSON. The driver first sends {"ready": true}; then, per request
{"code", "output_cap", "max_images", "max_image_bytes"}, it runs the code
in one namespace that persists between calls and answers with what a REPL
would show: stdout and stderr (bounded), the last expression's repr
(bounded; a pandas DataFrame as a text table), the exception with its
traceback, and the matplotlib figures drawn as PNG.

SIGINT, which the server sends past a call's deadline, raises
KeyboardInterrupt in the user's code only: between calls it is ignored, so
the driver itself is never interrupted. File descriptors 0 and 1 carry the
protocol only: at start they move to private descriptors, and what child
processes write straight to fd 1 or 2 goes to the jail's stderr, which the
server returns with the call's output.

It also provides the matplotlib backend (MPLBACKEND=module://kiln_matplotlib):
plt.show() hands the open figures to the call's result instead of a window.
"""

import ast
import importlib.abc
import importlib.util
import base64
import io
import json
import linecache
import os
import signal
import struct
import sys
import traceback
import types

_state = {"pid": 0, "executing": False, "figures": [], "dropped": 0, "limits": {}}


def _read_exact(fd, n):
    chunks = []
    while n > 0:
        chunk = os.read(fd, n)
        if not chunk:
            return None
        chunks.append(chunk)
        n -= len(chunk)
    return b"".join(chunks)


def _read_message(fd):
    header = _read_exact(fd, 4)
    if header is None:
        return None
    body = _read_exact(fd, struct.unpack(">I", header)[0])
    return None if body is None else json.loads(body.decode("utf-8"))


def _write_message(fd, message):
    body = json.dumps(message).encode("utf-8")
    data = struct.pack(">I", len(body)) + body
    while data:
        data = data[os.write(fd, data):]


class _Capture(io.TextIOBase):
    """A bounded sys.stdout/sys.stderr: keeps `cap` bytes, counts the rest."""

    def __init__(self, cap):
        self.parts, self.kept, self.total, self.cap = [], 0, 0, cap

    def writable(self):
        return True

    def write(self, text):
        if not isinstance(text, str):
            raise TypeError("write() argument must be str, not " + type(text).__name__)
        data = text.encode("utf-8", "replace")
        self.total += len(data)
        room = self.cap - self.kept
        if room > 0:
            keep = data[:room]
            self.parts.append(keep)
            self.kept += len(keep)
        return len(text)

    def value(self):
        return b"".join(self.parts).decode("utf-8", "replace")

    def truncated(self):
        return self.total > self.kept


def _bounded(text, cap):
    data = text.encode("utf-8", "replace")
    if len(data) <= cap:
        return text, False
    return data[:cap].decode("utf-8", "ignore"), True


# --- matplotlib backend ------------------------------------------------------

# MPLBACKEND=module://kiln_matplotlib names this module, made from source
# here when matplotlib first asks for it (so the driver starts without
# importing matplotlib): Agg canvases, and a show() that hands the open
# figures to the call's result.
_BACKEND_SOURCE = """
from matplotlib.backends.backend_agg import FigureCanvasAgg as FigureCanvas
from matplotlib.backend_bases import FigureManagerBase as FigureManager
import kiln_driver
def show(*args, **kwargs):
    kiln_driver._collect_figures()
"""


class _BackendLoader(importlib.abc.Loader):
    def create_module(self, spec):
        return None

    def exec_module(self, module):
        exec(_BACKEND_SOURCE, module.__dict__)


class _BackendFinder(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name != "kiln_matplotlib":
            return None
        return importlib.util.spec_from_loader(name, _BackendLoader())


def _collect_figures():
    """Every open figure becomes a PNG of the call's result, then closes."""
    pyplot = sys.modules.get("matplotlib.pyplot")
    if pyplot is None:
        return
    limits = _state["limits"]
    for number in pyplot.get_fignums():
        figure = pyplot.figure(number)
        if len(_state["figures"]) >= limits.get("max_images", 8):
            _state["dropped"] += 1
            continue
        buffer = io.BytesIO()
        figure.savefig(buffer, format="png")
        png = buffer.getvalue()
        if len(png) > limits.get("max_image_bytes", 1 << 20):
            _state["dropped"] += 1
            continue
        width, height = struct.unpack(">II", png[16:24])
        _state["figures"].append({"png": base64.b64encode(png).decode("ascii"), "width": width, "height": height})
    pyplot.close("all")


# --- running a cell ---------------------------------------------------------


def _display(value, cap):
    """The final expression as a REPL shows it; a DataFrame as a text table."""
    pandas = sys.modules.get("pandas")
    if pandas is not None and isinstance(value, (pandas.DataFrame, pandas.Series)):
        text = value.to_string(max_rows=60, max_cols=30)
        if len(value) > 60:
            text += "\n[%d rows x %s]" % (len(value), value.shape[1] if value.ndim > 1 else "1 column")
    else:
        text = repr(value)
    return _bounded(text, cap)


_cell_counter = [0]


def _compile_cell(code):
    """The cell as a module, and its last expression apart (like a REPL)."""
    _cell_counter[0] += 1
    filename = "<cell %d>" % _cell_counter[0]
    # Tracebacks show the cell's lines, as they would for a file.
    linecache.cache[filename] = (len(code), None, code.splitlines(True), filename)
    tree = ast.parse(code, filename, "exec")
    last = None
    if tree.body and isinstance(tree.body[-1], ast.Expr):
        last = ast.Expression(tree.body.pop().value)
    body = compile(tree, filename, "exec")
    return body, (compile(last, filename, "eval") if last is not None else None)


def _error(exc):
    # Only the cell's frames: not the driver's (exec, the SIGINT handler).
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if f.filename != __file__]
    lines = ["Traceback (most recent call last):\n"] + traceback.format_list(frames) if frames else []
    lines += traceback.format_exception_only(type(exc), exc)
    return {"type": type(exc).__name__, "message": str(exc), "traceback": "".join(lines)}


def _run_cell(request, namespace):
    cap = int(request.get("output_cap", 1 << 20))
    _state["limits"] = request
    _state["figures"], _state["dropped"] = [], 0
    out, err = _Capture(cap), _Capture(cap)
    reply = {"value": None, "value_truncated": False, "error": None}
    saved = sys.stdout, sys.stderr
    sys.stdout, sys.stderr = out, err
    try:
        try:
            body, last = _compile_cell(request["code"])
            _state["executing"] = True
            exec(body, namespace)
            if last is not None:
                value = eval(last, namespace)
                if value is not None:
                    namespace["_"] = value
                    reply["value"], reply["value_truncated"] = _display(value, cap)
        finally:
            _state["executing"] = False
            if os.getpid() != _state["pid"]:
                os._exit(0)  # a process the cell forked must not answer requests too
    except BaseException as exc:  # SystemExit and KeyboardInterrupt included: the driver goes on
        reply["error"] = _error(exc)
    finally:
        sys.stdout, sys.stderr = saved
    try:
        _collect_figures()
    except Exception as exc:
        err.write("kiln: a figure could not be rendered: %r\n" % (exc,))
    reply.update(stdout=out.value(), stdout_truncated=out.truncated(), stderr=err.value(),
                 stderr_truncated=err.truncated(), images=_state["figures"], images_dropped=_state["dropped"])
    return reply


def _on_sigint(signum, frame):
    if _state["executing"]:
        raise KeyboardInterrupt


def main():
    sys.modules["kiln_driver"] = sys.modules[__name__]
    _state["pid"] = os.getpid()
    sys.meta_path.append(_BackendFinder())
    requests = os.dup(0)
    replies = os.dup(1)
    os.set_inheritable(requests, False)
    os.set_inheritable(replies, False)
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.close(null)
    os.dup2(2, 1)
    sys.stdin = open(os.devnull)
    signal.signal(signal.SIGINT, _on_sigint)
    # The user's code runs in a module of its own named __main__ (classes
    # it defines pickle as they would in a script).
    user_main = types.ModuleType("__main__")
    user_main.__dict__["__builtins__"] = __builtins__
    sys.modules["__main__"] = user_main
    sys.path[0] = os.getcwd()
    _write_message(replies, {"ready": True, "python": sys.version.split()[0]})
    while True:
        request = _read_message(requests)
        if request is None:
            return
        _write_message(replies, _run_cell(request, user_main.__dict__))


if __name__ == "__main__":
    main()
