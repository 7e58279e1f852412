"""Load libstdc++ globally before regopy, or other C++ libraries crash in the same process.

regopy's librego_shared.so exports its own ``operator new``/``delete``. When it is the
first library to pull in libstdc++, libstdc++ allocates through it while google-re2 and
libmodsecurity free with glibc's ``free``: ``free(): invalid pointer`` as soon as the
policy agent's code shares a process with theirs (seen running all agent tests in one
pytest). Loading libstdc++ first, with RTLD_GLOBAL, makes every library agree.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util

# No libstdc++ to load: then regopy brings its own, and nothing else can clash with it.
with contextlib.suppress(OSError):
    ctypes.CDLL(ctypes.util.find_library("stdc++") or "libstdc++.so.6", mode=ctypes.RTLD_GLOBAL)
