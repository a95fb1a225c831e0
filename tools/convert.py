#!/usr/bin/python3
"""Convert official checkpoints to safetensors with the official tensor names.

    tools/convert.py INPUT OUTPUT.safetensors [--key NAME] [--prefix P] [--strip-prefix P]
    tools/convert.py INPUT --list

INPUT may be
  * an NVlabs network pickle (.pkl: StyleGAN2-ADA, EG3D, Next3D, InvertAvatar), a pickled dict of
    "persistent" networks (G, D, G_ema, ...); --key picks one (default G_ema);
  * a torch.save checkpoint (.pt/.pth/.ckpt): a state dict, or a dict of them (OTAvatar's
    net_G_ema / net_Warp_ema, DPE's gen, a Lightning state_dict); --key picks one.

Nothing in the file is ever executed. Pickles can run arbitrary code, and NVlabs pickles even
embed the Python source of their networks; this converter unpickles with an allow-list that
rebuilds tensors, storages, dicts, lists and plain numbers only. Every other class becomes an
inert record of its pickled state (so Module trees can be walked for their parameters), and any
callable outside the allow-list is refused.

Needs Debian's python3-torch (for reading torch's tensor storage format). Part of avatar.cpp.
"""
import argparse
import collections
import io
import json
import os
import pickle
import struct
import sys

try:
    import torch
except ImportError:  # pragma: no cover - reported to the user
    sys.exit("convert.py: needs PyTorch (Debian: apt-get install python3-torch)")


class ConvertError(Exception):
    pass


# --------------------------------------------------------------------------------------------
# Restricted unpickling


class Record:
    """An inert stand-in for any pickled object whose class is not allow-listed: it keeps the
    class name, constructor arguments and state, and runs nothing."""

    qualname = "?"

    def __init__(self, *args, **kwargs):
        self.args = args
        self.kwargs = kwargs
        self.state = None

    def __setstate__(self, state):
        self.state = state

    # Lists/dicts of records are rebuilt through append/__setitem__ by some pickles.
    def append(self, item):
        self.__dict__.setdefault("items", []).append(item)

    def extend(self, items):
        self.__dict__.setdefault("items", []).extend(items)

    def __setitem__(self, key, value):
        self.__dict__.setdefault("mapping", {})[key] = value

    def __repr__(self):
        return f"<record of {self.qualname}>"


_record_classes = {}


def record_class(module, name):
    key = f"{module}.{name}"
    if key not in _record_classes:
        _record_classes[key] = type(name, (Record,), {"qualname": key})
    return _record_classes[key]


class PersistentObject(Record):
    """An NVlabs torch_utils.persistence object: its class source is kept as text, never run."""

    qualname = "torch_utils.persistence"

    def __init__(self, meta):
        super().__init__()
        if not isinstance(meta, dict) or "state" not in meta:
            raise ConvertError("malformed NVlabs persistent object")
        self.class_name = meta.get("class_name", "?")
        self.state = meta["state"]


def _safe_reconstructor(cls, base, state):
    # copyreg._reconstructor(cls, object, None) builds plain objects; only records may be built.
    if not (isinstance(cls, type) and issubclass(cls, Record)):
        raise ConvertError(f"refusing to construct {cls!r}")
    return cls()


def _load_storage_bytes(data):
    # Storages pickled by plain pickle.dump carry a nested legacy torch.save; load it restricted.
    return torch.load(io.BytesIO(data), map_location="cpu", pickle_module=_restricted_module)


# Data-only reconstruction functions and types that may be called while unpickling.
_ALLOWED = {
    ("collections", "OrderedDict"): collections.OrderedDict,
    ("torch._utils", "_rebuild_tensor_v2"): torch._utils._rebuild_tensor_v2,
    ("torch._utils", "_rebuild_parameter"): torch._utils._rebuild_parameter,
    ("torch", "Size"): torch.Size,
    ("torch", "device"): torch.device,
    ("torch.storage", "_load_from_bytes"): _load_storage_bytes,
    ("copyreg", "_reconstructor"): _safe_reconstructor,
    ("builtins", "set"): set,
    ("builtins", "frozenset"): frozenset,
    ("builtins", "slice"): slice,
    ("builtins", "complex"): complex,
    ("builtins", "object"): object,
    ("torch_utils.persistence", "_reconstruct_persistent_obj"): PersistentObject,
}
for _name in ("_rebuild_parameter_with_state", "_rebuild_tensor"):
    if hasattr(torch._utils, _name):
        _ALLOWED[("torch._utils", _name)] = getattr(torch._utils, _name)
for _dtype in ("Float", "Double", "Half", "BFloat16", "Long", "Int", "Short", "Char", "Byte",
               "Bool"):
    _ALLOWED[("torch", f"{_dtype}Storage")] = getattr(torch, f"{_dtype}Storage")
_ALLOWED[("torch", "UntypedStorage")] = getattr(torch, "UntypedStorage", None)
_ALLOWED[("torch", "_UntypedStorage")] = getattr(torch, "_UntypedStorage", None)
for _dtype in ("float16", "float32", "float64", "bfloat16", "int8", "int16", "int32", "int64",
               "uint8", "bool"):
    _ALLOWED[("torch", _dtype)] = getattr(torch, _dtype)
_ALLOWED = {k: v for k, v in _ALLOWED.items() if v is not None}

# Modules whose classes are data containers we can stand in for with records (their __init__ and
# methods never run). Functions from anywhere else are refused.
_RECORDABLE_PREFIXES = ("torch.nn.", "torch.optim.", "torch_utils.", "training.", "dnnlib",
                        "argparse", "numpy", "__main__", "models.", "networks.", "omegaconf",
                        "pytorch_lightning", "lightning", "typing", "pathlib",
                        "functools", "enum", "collections", "datetime", "legacy", "trainers.",
                        "config", "util", "utils", "camera_utils")


class RestrictedUnpickler(pickle.Unpickler):
    def find_class(self, module, name):
        if (module, name) in _ALLOWED:
            return _ALLOWED[(module, name)]
        if module == "numpy.core.multiarray" and name == "scalar":
            return _numpy_scalar
        if module == "numpy" and name == "dtype":
            return _numpy_dtype
        if module == "numpy.core.multiarray" and name == "_reconstruct":
            return _numpy_array
        if module.startswith(_RECORDABLE_PREFIXES) or module in ("__main__",):
            if module in ("builtins", "os", "posix", "subprocess", "sys", "shutil"):
                raise ConvertError(f"refusing to call {module}.{name} from a pickle")
            return record_class(module, name)
        raise ConvertError(f"refusing to load {module}.{name} from a pickle (not data)")


def _numpy_scalar(dtype, data=None):
    import numpy
    return numpy.frombuffer(data, dtype=dtype)[0] if data is not None else dtype.type()


def _numpy_dtype(name, *args):
    import numpy
    return numpy.dtype(name)


def _numpy_array(cls, shape, dtype):
    return record_class("numpy", "ndarray")()


class _RestrictedModule:
    """A pickle_module for torch.load that unpickles through RestrictedUnpickler."""

    Unpickler = RestrictedUnpickler
    __name__ = "restricted_pickle"

    @staticmethod
    def load(file, **kwargs):
        return RestrictedUnpickler(file, **kwargs).load()


_restricted_module = _RestrictedModule()


# --------------------------------------------------------------------------------------------
# Finding the state dict


def _module_state(obj, prefix, out):
    """Collects parameters and persistent buffers of a (recorded) torch Module tree."""
    state = obj.state if isinstance(obj, Record) else getattr(obj, "__dict__", None)
    if not isinstance(state, dict) or "_parameters" not in state:
        raise ConvertError(f"'{prefix or 'network'}' is not a torch module")
    non_persistent = state.get("_non_persistent_buffers_set", set()) or set()
    for name, tensor in (state.get("_parameters") or {}).items():
        if tensor is not None:
            out[prefix + name] = tensor
    for name, tensor in (state.get("_buffers") or {}).items():
        if tensor is not None and name not in non_persistent:
            out[prefix + name] = tensor
    for name, child in (state.get("_modules") or {}).items():
        if child is not None:
            _module_state(child, prefix + name + ".", out)


def _is_state_dict(value):
    return isinstance(value, dict) and value and all(
        isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in value.items())


def _describe(value):
    if isinstance(value, torch.Tensor):
        return f"tensor {list(value.shape)}"
    if _is_state_dict(value):
        return f"state dict of {len(value)} tensors"
    if isinstance(value, Record) and isinstance(value.state, dict) and "_parameters" in value.state:
        return f"network ({value.qualname if not isinstance(value, PersistentObject) else value.class_name})"
    if isinstance(value, dict):
        return f"dict of {len(value)} entries"
    return type(value).__name__


def _candidates(root):
    if isinstance(root, dict):
        return {str(k): v for k, v in root.items()}
    return {}


def extract_state_dict(root, key, default_keys):
    """The chosen entry of a loaded checkpoint as an ordered {name: tensor}."""
    if key is None and _is_state_dict(root):
        return collections.OrderedDict(root), None
    entries = _candidates(root)
    if key is None:
        key = next((k for k in default_keys if k in entries), None)
    if key is None:
        listing = ", ".join(f"{k} ({_describe(v)})" for k, v in entries.items())
        raise ConvertError(f"the checkpoint holds several entries; choose one with --key: {listing}")
    if key not in entries:
        raise ConvertError(f"no entry '{key}' (entries: {', '.join(entries) or 'none'})")
    value = entries[key]
    if _is_state_dict(value):
        return collections.OrderedDict(value), key
    if isinstance(value, dict) and "state_dict" in value and _is_state_dict(value["state_dict"]):
        return collections.OrderedDict(value["state_dict"]), key
    out = collections.OrderedDict()
    _module_state(value, "", out)
    return out, key


def _init_kwargs(root, key):
    """NVlabs networks carry their constructor arguments; keep them as metadata."""
    value = _candidates(root).get(key)
    if isinstance(value, Record) and isinstance(value.state, dict):
        kwargs = value.state.get("_init_kwargs") or value.state.get("init_kwargs")
        if isinstance(kwargs, dict):
            try:
                return json.dumps(kwargs, default=lambda o: repr(o), sort_keys=True)
            except (TypeError, ValueError):
                return None
    return None


# --------------------------------------------------------------------------------------------
# safetensors writing


_DTYPES = {torch.float64: "F64", torch.float32: "F32", torch.float16: "F16",
           torch.bfloat16: "BF16", torch.int64: "I64", torch.int32: "I32", torch.int16: "I16",
           torch.int8: "I8", torch.uint8: "U8", torch.bool: "BOOL"}


def write_safetensors(path, tensors, metadata):
    header = {"__metadata__": {k: str(v) for k, v in metadata.items()}} if metadata else {}
    blobs = []
    offset = 0
    for name, tensor in tensors.items():
        tensor = tensor.detach().cpu().contiguous()
        if tensor.dtype not in _DTYPES:
            raise ConvertError(f"tensor '{name}' has dtype {tensor.dtype}, which safetensors cannot hold")
        flat = tensor.reshape(-1)
        if tensor.dtype == torch.bool:
            flat = flat.to(torch.uint8)
        # Raw little-endian bytes; numpy cannot hold bfloat16, so reinterpret as bytes first.
        data = flat.view(torch.uint8).numpy().tobytes() if tensor.numel() else b""
        header[name] = {"dtype": _DTYPES[tensor.dtype], "shape": list(tensor.shape),
                        "data_offsets": [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    temporary = f"{path}.tmp-{os.getpid()}"
    try:
        with open(temporary, "wb") as out:
            out.write(struct.pack("<Q", len(text)))
            out.write(text)
            for blob in blobs:
                out.write(blob)
        os.replace(temporary, path)
    finally:
        if os.path.exists(temporary):
            os.remove(temporary)


# --------------------------------------------------------------------------------------------


def load_checkpoint(path):
    with open(path, "rb") as f:
        magic = f.read(4)
    try:
        if magic.startswith(b"PK"):  # torch.save zip format
            return torch.load(path, map_location="cpu", pickle_module=_restricted_module), "torch.save"
        with open(path, "rb") as f:
            try:
                return RestrictedUnpickler(f).load(), "pickle"
            except pickle.UnpicklingError:
                pass
        # torch.save legacy (non-zip) format
        return torch.load(path, map_location="cpu", pickle_module=_restricted_module), "torch.save"
    except ConvertError:
        raise
    except Exception as e:  # corrupt or foreign files
        raise ConvertError(f"cannot read as a checkpoint: {e}") from e


def main(argv=None):
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        epilog="Examples: convert.py ffhq.pkl stylegan2-ffhq.safetensors  |  "
               "convert.py otavatar.pt controller.safetensors --key net_Warp_ema  |  "
               "convert.py dpe.pt dpe.safetensors --key gen")
    parser.add_argument("input", help="official checkpoint (.pkl, .pt, .pth, .ckpt)")
    parser.add_argument("output", nargs="?", help="safetensors file to write")
    parser.add_argument("--key", help="entry of the checkpoint to convert (default: G_ema, or "
                                      "the file itself if it is a state dict)")
    parser.add_argument("--strip-prefix", default="",
                        help="remove this prefix from tensor names (e.g. 'module.')")
    parser.add_argument("--prefix", default="",
                        help="keep only the tensors under this prefix, without it (e.g. "
                             "'latent_module.' of a PVP Lightning checkpoint)")
    parser.add_argument("--list", action="store_true", help="list the checkpoint's entries")
    args = parser.parse_args(argv)
    try:
        if not os.path.isfile(args.input):
            raise ConvertError("no such file")
        root, fmt = load_checkpoint(args.input)
        if args.list:
            entries = _candidates(root) or {"(file)": root}
            for k, v in entries.items():
                print(f"{k}: {_describe(v)}")
            return 0
        if not args.output:
            parser.error("OUTPUT is required unless --list is given")
        tensors, key = extract_state_dict(root, args.key, ("G_ema", "gen", "state_dict"))
        if args.prefix:
            tensors = collections.OrderedDict(
                (k[len(args.prefix):], v) for k, v in tensors.items() if k.startswith(args.prefix))
            if not tensors:
                raise ConvertError(f"no tensor name starts with '{args.prefix}'")
        if args.strip_prefix:
            tensors = collections.OrderedDict(
                (k[len(args.strip_prefix):] if k.startswith(args.strip_prefix) else k, v)
                for k, v in tensors.items())
        if not tensors:
            raise ConvertError("no tensors found")
        metadata = {"converted_from": os.path.basename(args.input), "format": fmt}
        if key:
            metadata["key"] = key
            kwargs = _init_kwargs(root, key)
            if kwargs:
                metadata["init_kwargs"] = kwargs
        write_safetensors(args.output, tensors, metadata)
        count = sum(t.numel() for t in tensors.values())
        print(f"{args.output}: {len(tensors)} tensors, {count:,} values"
              f"{f' (from {key!r})' if key else ''}")
        return 0
    except ConvertError as e:
        print(f"convert.py: error: {args.input}: {e}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
