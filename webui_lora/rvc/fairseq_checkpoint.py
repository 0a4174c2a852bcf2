"""Read fairseq checkpoints (RVC's hubert_base.pt, ContentVec legacy) without fairseq and without running code.

`torch.load(weights_only=True)` refuses these files because they pickle fairseq `Dictionary` objects (and
sometimes omegaconf or argparse containers); `weights_only=False` would let the file run any code it likes.
The unpickler here sits in between: torch's tensor rebuilders and a few builtin containers are real, classes
of fairseq / omegaconf / argparse / typing / numpy become `InertObject`s that only record what the pickle says
about them, and every other global is refused before anything is called.
"""

import _compat_pickle
import codecs
import collections
import functools
import os
import pickle
import types
import zipfile

import torch

from .checkpoints import CheckpointError, UnsafeCheckpointError


class RefusedGlobal(Exception):
    """The pickle asked for something outside the allow-list; read_checkpoint names the file."""


def _latin1_bytes(text, encoding):
    """Protocol-2 pickles store bytes as `_codecs.encode(text, 'latin1')`; nothing else is accepted."""
    if encoding not in ("latin1", "latin-1"):
        raise RefusedGlobal(f"refused _codecs.encode with encoding {encoding!r}")
    return codecs.encode(text, encoding)


_ALLOWED_GLOBALS = {
    ("collections", "OrderedDict"): collections.OrderedDict,
    ("collections", "defaultdict"): collections.defaultdict,
    ("torch._utils", "_rebuild_tensor"): torch._utils._rebuild_tensor,
    ("torch._utils", "_rebuild_tensor_v2"): torch._utils._rebuild_tensor_v2,
    ("torch._utils", "_rebuild_parameter"): torch._utils._rebuild_parameter,
    ("_codecs", "encode"): _latin1_bytes,
    **{("builtins", kind.__name__): kind
       for kind in (dict, list, tuple, set, frozenset, str, int, float, complex, bool)},
}

# Bookkeeping classes (task dictionaries, configs, meters) that a checkpoint may hold and we never need alive.
_INERT_MODULE_ROOTS = ("fairseq", "omegaconf", "typing", "numpy")
_INERT_GLOBALS = {("argparse", "Namespace")}


class InertObject:
    """Stands in for a refused-to-import class: records constructor args and pickled state, runs nothing."""

    qualified_name = "?"

    def __new__(cls, *args, **kwargs):
        obj = super().__new__(cls)
        obj.args, obj.state = args, None
        return obj

    def __init__(self, *args, **kwargs):
        """Called when the pickle REDUCEs the class itself; `__new__` already kept the args."""

    def __setstate__(self, state):
        if isinstance(state, tuple) and len(state) == 2:  # (__dict__, __slots__ values)
            state = {**(state[0] or {}), **(state[1] or {})}
        self.state = state

    def __repr__(self):
        return f"<inert {self.qualified_name}>"


@functools.lru_cache(maxsize=None)
def _inert_class(qualified_name):
    return type(qualified_name.rsplit(".", 1)[-1], (InertObject,), {"qualified_name": qualified_name})


def _resolve_global(module, name):
    module, name = _compat_pickle.NAME_MAPPING.get((module, name), (module, name))
    module = _compat_pickle.IMPORT_MAPPING.get(module, module)
    if (module, name) in _ALLOWED_GLOBALS:
        return _ALLOWED_GLOBALS[(module, name)]
    if module.split(".")[0] in _INERT_MODULE_ROOTS or (module, name) in _INERT_GLOBALS:
        return _inert_class(f"{module}.{name}")
    raise RefusedGlobal(f"the pickle asks for {module}.{name}, which is not on the allow-list "
                                "(a checkpoint never needs it; loading it could run code)")


class RestrictedUnpickler(pickle.Unpickler):
    """`pickle.Unpickler` that resolves globals only through the allow-list above."""

    def find_class(self, module, name):
        return _resolve_global(module, name)


def _restricted_load(file, **kwargs):
    return RestrictedUnpickler(file, **kwargs).load()


# What `torch.load(pickle_module=...)` needs: it subclasses `.Unpickler` and calls `.load` for legacy files.
RESTRICTED_PICKLE = types.SimpleNamespace(__name__="restricted_pickle", Unpickler=RestrictedUnpickler,
                                          load=_restricted_load)


def _is_torchscript_archive(path):
    """torch.load hands TorchScript zips to torch.jit.load, which our unpickler would never see."""
    if not zipfile.is_zipfile(path):
        return False
    with zipfile.ZipFile(path) as archive:
        return any(entry.endswith("constants.pkl") for entry in archive.namelist())


def read_checkpoint(path):
    """Load a torch/fairseq checkpoint file with tensors on CPU and every non-allow-listed global refused."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{path}: no such checkpoint file")
    if _is_torchscript_archive(path):
        raise UnsafeCheckpointError(path, "is a TorchScript archive, not a fairseq checkpoint; refused")
    try:
        return torch.load(path, map_location="cpu", pickle_module=RESTRICTED_PICKLE, weights_only=False)
    except RefusedGlobal as err:
        raise UnsafeCheckpointError(path, f"refused to load: {err}") from None
    except Exception as err:  # a truncated zip, a text file, a foreign pickle: all unreadable the same way
        raise CheckpointError(path, f"cannot be read as a torch checkpoint ({type(err).__name__}: {err})") from err


def plain_config(value):
    """Turn a config as pickled (dicts, argparse.Namespace, omegaconf DictConfig/ListConfig) into dicts/lists.

    omegaconf containers keep their items under `_content` and nodes their value under `_val`; an enum value
    is pickled as `EnumClass(value)`, so an inert object with one constructor arg and no state is that value.
    """
    if isinstance(value, dict):
        return {key: plain_config(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain_config(item) for item in value]
    if not isinstance(value, InertObject):
        return value
    state = value.state
    if isinstance(state, dict):
        for key in ("_content", "_val"):
            if key in state:
                return plain_config(state[key])
        return plain_config(state)
    if state is None and len(value.args) == 1:
        return plain_config(value.args[0])
    return value
