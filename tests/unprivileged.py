"""Checks about file modes that root would pass by writing through them, run so they still can fail.

``call_unprivileged(func, *args)`` calls ``func(*args)``: directly when not root; as root (Linux),
in a child Python that first gives up the capabilities that let root ignore file modes
(CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH, CAP_FOWNER: from its effective, permitted and inheritable
sets, and from the bounding set, so programs it starts cannot get them back). The child is then
bound by the modes of the files like any user: root stays their owner, so a read-only folder of
the test's ``tmp_path`` refuses it as it would refuse its owning user.

Why not ``nobody``: the interpreter and its standard library live under /root (mode 700), so a
child running as ``nobody`` fails on the first module it imports lazily (``array`` under PIL:
"cover is not a readable image") and pytest's ``tmp_path`` is out of its reach too.

An exception the child raises is raised again here, as the same class with the same message, so
``pytest.raises(..., match=...)`` works either way.
"""

import importlib
import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# argv: module, function name, JSON list of arguments (str); prints one JSON line on stdout
_CHILD = """
import ctypes, importlib, json, sys

DROP = (1, 2, 3)  # CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH, CAP_FOWNER
libc = ctypes.CDLL(None, use_errno=True)


def check(ok, call):
    if not ok:
        raise OSError(ctypes.get_errno(), f"{call} failed")


for cap in DROP:  # PR_CAPBSET_DROP: nothing exec'd from here gets them back either
    check(libc.prctl(24, cap, 0, 0, 0) == 0, "prctl(PR_CAPBSET_DROP)")


class Header(ctypes.Structure):
    _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]


class Data(ctypes.Structure):
    _fields_ = [(name, ctypes.c_uint32) for name in ("effective", "permitted", "inheritable")]


header, data = Header(0x20080522, 0), (Data * 2)()  # _LINUX_CAPABILITY_VERSION_3
check(libc.capget(ctypes.byref(header), data) == 0, "capget")
dropped = sum(1 << cap for cap in DROP)
for name in ("effective", "permitted", "inheritable"):
    setattr(data[0], name, getattr(data[0], name) & ~dropped)
check(libc.capset(ctypes.byref(header), data) == 0, "capset")
status = open("/proc/self/status").read()
effective = int(status.split("CapEff:")[1].split()[0], 16)
assert not effective & dropped, f"capabilities still effective: {effective:x}"

func = getattr(importlib.import_module(sys.argv[1]), sys.argv[2])
try:
    result = func(*json.loads(sys.argv[3]))
except Exception as error:
    kind = type(error)
    out = {"module": kind.__module__, "type": kind.__qualname__, "message": str(error)}
else:
    out = {"result": repr(result)}
print(json.dumps(out))
"""


def call_unprivileged(func, *args):
    """``func(*args)`` bound by file modes even as root; ``func`` a module-level function, ``args``
    strings or paths. Returns ``func``'s result, as root its ``repr`` (it cannot come back as an
    object)."""
    if os.geteuid() != 0:
        return func(*args)
    argv = [func.__module__, func.__qualname__, json.dumps([str(a) for a in args])]
    done = subprocess.run(
        [sys.executable, "-c", _CHILD, *argv],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
    )
    if done.returncode != 0:
        raise RuntimeError(f"the unprivileged child failed ({done.returncode}):\n{done.stderr}")
    out = json.loads(done.stdout.strip().splitlines()[-1])
    if "result" in out:
        return out["result"]
    kind = getattr(importlib.import_module(out["module"]), out["type"], None)
    try:
        error = kind(out["message"])
    except Exception:  # not a class, or one that takes other arguments
        error = None
    if not isinstance(error, Exception):
        error = RuntimeError(f"{out['module']}.{out['type']}: {out['message']}")
    raise error
