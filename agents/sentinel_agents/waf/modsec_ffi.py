"""ctypes binding to libmodsecurity v3's C API: signatures, handles and who frees what.

Only the calls the engine needs are declared. Every argument and return type is spelled out,
because ctypes' default (``int`` for everything) silently truncates 64-bit pointers.

Ownership rules this module enforces, read from libmodsecurity 3.0.9:

- strings passed in (URI, headers, body) are copied by the library, so Python's buffers only
  have to outlive the call;
- ``msc_rules_add*`` report errors through a ``strdup``'d string, and ``msc_intervention``
  ``strdup``s ``url`` and ``log``: the caller frees them with libc ``free``;
- the log callback must stay referenced for as long as the ``ModSecurity`` handle lives, or
  the library calls into freed memory; the handle itself lives until the process exits (see
  :class:`ModSecurityHandle` for why ``msc_cleanup`` is never called).

ctypes releases the GIL around every foreign call, so transactions on different threads run
in parallel; only the log callback takes the GIL back, briefly.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import itertools
import threading

from sentinel_agents.waf.config import WafConfigError

_c_void_p = ctypes.c_void_p
_c_char_p = ctypes.c_char_p
_c_int = ctypes.c_int
_c_size_t = ctypes.c_size_t

# void (*ModSecLogCb)(void *data, const void *message): with the default text log property the
# message is a NUL-terminated C string.
LogCallback = ctypes.CFUNCTYPE(None, _c_void_p, _c_char_p)


class ModSecurityUnavailable(RuntimeError):
    """libmodsecurity could not be loaded; the message names what was tried."""


class Intervention(ctypes.Structure):
    """``ModSecurityIntervention_t``; ``url`` and ``log`` are pointers the caller must free."""

    _fields_ = [
        ("status", _c_int),
        ("pause", _c_int),
        ("url", _c_void_p),
        ("log", _c_void_p),
        ("disruptive", _c_int),
    ]


# (name, restype, argtypes) for every function used.
_SIGNATURES: tuple[tuple[str, object, list[object]], ...] = (
    ("msc_init", _c_void_p, []),
    ("msc_who_am_i", _c_char_p, [_c_void_p]),
    ("msc_set_connector_info", None, [_c_void_p, _c_char_p]),
    ("msc_set_log_cb", None, [_c_void_p, LogCallback]),
    ("msc_cleanup", None, [_c_void_p]),
    ("msc_create_rules_set", _c_void_p, []),
    ("msc_rules_add", _c_int, [_c_void_p, _c_char_p, ctypes.POINTER(_c_void_p)]),
    ("msc_rules_add_file", _c_int, [_c_void_p, _c_char_p, ctypes.POINTER(_c_void_p)]),
    ("msc_rules_cleanup", _c_int, [_c_void_p]),
    ("msc_new_transaction", _c_void_p, [_c_void_p, _c_void_p, _c_void_p]),
    ("msc_process_connection", _c_int, [_c_void_p, _c_char_p, _c_int, _c_char_p, _c_int]),
    ("msc_process_uri", _c_int, [_c_void_p, _c_char_p, _c_char_p, _c_char_p]),
    (
        "msc_add_n_request_header",
        _c_int,
        [_c_void_p, _c_char_p, _c_size_t, _c_char_p, _c_size_t],
    ),
    ("msc_process_request_headers", _c_int, [_c_void_p]),
    ("msc_append_request_body", _c_int, [_c_void_p, _c_char_p, _c_size_t]),
    ("msc_process_request_body", _c_int, [_c_void_p]),
    ("msc_process_response_headers", _c_int, [_c_void_p, _c_int, _c_char_p]),
    (
        "msc_add_n_response_header",
        _c_int,
        [_c_void_p, _c_char_p, _c_size_t, _c_char_p, _c_size_t],
    ),
    ("msc_append_response_body", _c_int, [_c_void_p, _c_char_p, _c_size_t]),
    ("msc_process_response_body", _c_int, [_c_void_p]),
    ("msc_intervention", _c_int, [_c_void_p, ctypes.POINTER(Intervention)]),
    ("msc_process_logging", _c_int, [_c_void_p]),
    ("msc_transaction_cleanup", None, [_c_void_p]),
)

_DEFAULT_NAMES = ("libmodsecurity.so.3", "libmodsecurity.so")


class ModSecurityLibrary:
    """The loaded shared object with typed entry points.

    Attribute access returns ctypes function pointers whose results mypy sees as ``Any``;
    the engine converts them at the call site, so no ``Any`` escapes this layer.
    """

    def __init__(self, path: str | None = None) -> None:
        candidates = [path] if path else [ctypes.util.find_library("modsecurity"), *_DEFAULT_NAMES]
        errors: list[str] = []
        for name in candidates:
            if not name:
                continue
            try:
                self._dll = ctypes.CDLL(name)
                break
            except OSError as exc:
                errors.append(f"{name}: {exc}")
        else:
            raise ModSecurityUnavailable(
                "libmodsecurity v3 could not be loaded ("
                + "; ".join(errors or ["not found by the dynamic linker"])
                + "); install Debian's libmodsecurity3 or set waf.library to its path"
            )
        self.path = name
        try:
            for fname, restype, argtypes in _SIGNATURES:
                func = getattr(self._dll, fname)
                func.restype = restype
                func.argtypes = argtypes
        except AttributeError as exc:
            raise ModSecurityUnavailable(
                f"{name} lacks the ModSecurity v3 C API ({exc}); is this libmodsecurity 3.x?"
            ) from exc
        libc = ctypes.CDLL(None)
        self._free = libc.free
        self._free.restype = None
        self._free.argtypes = [_c_void_p]
        self.f = self._dll

    def free(self, pointer: int | None) -> None:
        """Release a string the library ``strdup``'d for us (errors, intervention url/log)."""
        if pointer:
            self._free(pointer)

    def take_string(self, pointer: int | None) -> str:
        """Copy a library-owned C string into Python and free the original."""
        if not pointer:
            return ""
        try:
            return ctypes.string_at(pointer).decode("utf-8", "replace")
        finally:
            self._free(pointer)


class ModSecurityHandle:
    """The process's ``ModSecurity`` instance, its log callback and the per-transaction sinks.

    There is one per process and it is never freed: ``msc_cleanup`` runs the C++ destructor,
    which calls ``xmlCleanupParser()`` (and ``curl_global_cleanup()``), tearing down libxml2's
    global state under any other engine or library still using it. Engines share this handle
    and free only their own rule sets. Log lines reach the transaction that produced them
    through the key passed as ``msc_new_transaction``'s callback data.
    """

    def __init__(self, lib: ModSecurityLibrary) -> None:
        self.lib = lib
        self.pointer: int = lib.f.msc_init()
        if not self.pointer:
            raise ModSecurityUnavailable("msc_init returned NULL (out of memory?)")
        lib.f.msc_set_connector_info(self.pointer, b"sentinel-stack waf agent")
        self.version: str = (lib.f.msc_who_am_i(self.pointer) or b"").decode()
        self._sinks: dict[int, list[bytes]] = {}
        self._keys = itertools.count(1)

        def deliver(key: int | None, message: bytes | None) -> None:
            # Runs on the transaction's thread with the GIL re-taken; must never raise.
            sink = self._sinks.get(key or 0)
            if sink is not None and message is not None:
                sink.append(message)

        self._callback = LogCallback(deliver)
        lib.f.msc_set_log_cb(self.pointer, self._callback)

    def open_sink(self) -> tuple[int, list[bytes]]:
        """A fresh key for one transaction and the list its log lines will land in."""
        key = next(self._keys)  # itertools.count is atomic under the GIL
        sink: list[bytes] = []
        self._sinks[key] = sink
        return key, sink

    def close_sink(self, key: int) -> None:
        """Forget a finished transaction's sink."""
        self._sinks.pop(key, None)


_shared: dict[str, ModSecurityHandle] = {}
_shared_lock = threading.Lock()


def shared_handle(path: str | None = None) -> ModSecurityHandle:
    """The process-wide handle for the library at ``path`` (default: the system's)."""
    key = path or ""
    with _shared_lock:
        handle = _shared.get(key)
        if handle is None:
            handle = _shared[key] = ModSecurityHandle(ModSecurityLibrary(path))
        return handle


class RuleSetHandle:
    """One compiled ``RulesSet``: read-only once loaded, so transactions may share it."""

    def __init__(self, lib: ModSecurityLibrary) -> None:
        self.lib = lib
        self.pointer: int = lib.f.msc_create_rules_set()
        if not self.pointer:
            raise ModSecurityUnavailable("msc_create_rules_set returned NULL")

    def add_text(self, text: str, source: str) -> int:
        """Parse inline directives; ``source`` names them in the error a person reads."""
        error = _c_void_p()
        count = int(self.lib.f.msc_rules_add(self.pointer, text.encode(), ctypes.byref(error)))
        self._check(count, error, source)
        return count

    def add_file(self, path: str) -> int:
        """Load a rules file (its ``Include``s and data files resolve relative to it)."""
        error = _c_void_p()
        count = int(self.lib.f.msc_rules_add_file(self.pointer, path.encode(), ctypes.byref(error)))
        self._check(count, error, path)
        return count

    def _check(self, count: int, error: ctypes.c_void_p, source: str) -> None:
        if count < 0:
            detail = self.lib.take_string(error.value).strip()
            raise WafConfigError(f"ModSecurity rejected the rules in {source}: {detail}")
        self.lib.free(error.value)

    def close(self) -> None:
        """Free the rule set; no transaction may still use it."""
        if self.pointer:
            self.lib.f.msc_rules_cleanup(self.pointer)
            self.pointer = 0
