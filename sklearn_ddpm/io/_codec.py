"""Objects ⇄ (a JSON tree, tensors, arrays, byte blobs): the content of a safe model file.

Every JSON object in the tree is a node with one ``$kind`` key; lists, strings, finite numbers,
booleans and null stand for themselves. Tensors and numeric arrays go to safetensors, byte strings
(a backbone's safetensors weights, tokenizer files) to blobs; the tree holds their keys.

Objects are saved generically, so adding a parameter or a fitted attribute to an estimator needs
no change here:

* scikit-learn estimators (and skorch callbacks): the state their own ``__getstate__`` returns
  (parameters, fitted attributes ending in ``_``, recorded versions); rebuilt by calling the class
  with the parameters (which checks their names: a parameter this version does not know is an
  error) and then its ``__setstate__``;
* skorch nets: their parameters, the ``state_dict`` of their networks and optimizers, their
  history and fitted attributes; rebuilt by ``initialize`` and ``load_state_dict``;
* backbones: the plain data of their ``__getstate__`` (configs, safetensors weights).

Which classes may be named is decided by :mod:`._trust`.
"""

import math
import warnings
from collections import OrderedDict
from pathlib import PurePath

import numpy as np

from ._trust import public_name, resolve, trusted_kind

# skorch attributes that initialize() rebuilds or that describe the net's class, not its training
_NET_REBUILT = frozenset({"callbacks_", "history_", "initialized_", "virtual_params_", "prefixes_",
                          "cuda_dependent_attributes_", "init_context_"})
# numpy dtypes safetensors stores (others, e.g. strings and objects, go into the JSON tree)
_SAFETENSORS_NUMPY = frozenset("bool int8 int16 int32 int64 uint8 uint16 uint32 uint64 float16 float32 float64".split())


class ModelFormatError(ValueError):
    """A safe model file that cannot be read: damaged, crafted, or from a newer version."""


class UnsupportedValueError(TypeError):
    """An object holds a value the safe format cannot store (saving fails before anything is written)."""


class Encoder:
    """Turns an object into a JSON tree, collecting its tensors, arrays and blobs."""

    def __init__(self):
        self.tensors, self.arrays, self.blobs = {}, {}, {}
        self._ids = {}  # id(obj) -> node id, for objects shared within the model (a backbone)
        self._in_progress = set()
        self._keep = []  # keeps encoded objects alive so their ids stay unique

    def encode(self, value, where="model"):
        import torch

        if value is None or isinstance(value, bool) and type(value) is bool:
            return value
        if isinstance(value, np.generic):
            return {"$scalar": self.encode(value.item(), where), "dtype": value.dtype.str}
        if type(value) is int or type(value) is str:
            return value
        if isinstance(value, str):
            return str(value)  # e.g. torch's TorchVersion: kept as its text
        if type(value) is float:
            return value if math.isfinite(value) else {"$float": repr(value)}
        if type(value) is list:
            return [self.encode(v, f"{where}[{i}]") for i, v in enumerate(value)]
        if type(value) is tuple:
            return {"$tuple": [self.encode(v, f"{where}[{i}]") for i, v in enumerate(value)]}
        if type(value) in (dict, OrderedDict):  # state dicts are OrderedDicts; order is kept either way
            if all(type(k) is str for k in value):
                return {"$dict": {k: self.encode(v, f"{where}[{k!r}]") for k, v in value.items()}}
            return {"$items": [[self.encode(k, f"{where} key"), self.encode(v, f"{where}[{k!r}]")]
                               for k, v in value.items()]}
        if type(value) in (set, frozenset):
            items = sorted(value, key=repr)
            return {"$set": [self.encode(v, f"{where} item") for v in items], "frozen": type(value) is frozenset}
        if type(value) is bytes:
            key = f"blobs/{len(self.blobs)}"
            self.blobs[key] = value
            return {"$bytes": key}
        if isinstance(value, np.ndarray):
            return self._array(value, where)
        if isinstance(value, torch.Tensor):
            if value.is_sparse or value.requires_grad and value.grad_fn is not None:
                value = value.detach()
            key = f"t{len(self.tensors)}"
            # a copy: tensors of one state dict may share memory, which safetensors refuses
            self.tensors[key] = value.detach().to("cpu").contiguous().clone()
            return {"$tensor": key}
        if isinstance(value, torch.device):
            return {"$device": str(value)}
        if isinstance(value, torch.dtype):
            return {"$torch_dtype": str(value).removeprefix("torch.")}
        if isinstance(value, np.dtype):
            return {"$numpy_dtype": value.str}
        if isinstance(value, PurePath):
            return {"$path": str(value)}
        if isinstance(value, np.random.RandomState):
            return {"$random_state": self.encode(value.get_state(legacy=True), where)}
        if isinstance(value, torch.Generator):
            return {"$torch_generator": self.encode(value.get_state(), where), "device": str(value.device)}
        return self._object(value, where)

    def _array(self, value, where):
        if value.dtype.name in _SAFETENSORS_NUMPY:
            key = f"a{len(self.arrays)}"
            self.arrays[key] = np.ascontiguousarray(value.astype(value.dtype.newbyteorder("="), copy=False))
            return {"$ndarray": key}
        if value.dtype.kind in "USO":
            return {"$ndarray_list": self.encode(value.tolist(), where), "dtype": value.dtype.str,
                    "shape": list(value.shape)}
        raise UnsupportedValueError(f"{where}: arrays of dtype {value.dtype} cannot be saved in the safe format.")

    def _object(self, value, where):
        if isinstance(value, type) or _is_function(value):
            if trusted_kind(value) is None:
                raise _unsupported(where, value, named=True)
            return {"$type": public_name(value)}
        if id(value) in self._ids:
            if id(value) in self._in_progress:
                raise UnsupportedValueError(f"{where}: {type(value).__name__} refers to itself; the safe format "
                                            "stores trees of objects.")
            return {"$ref": self._ids[id(value)]}
        cls = type(value)
        kind = trusted_kind(cls)
        if kind not in ("estimator", "net", "state"):
            raise _unsupported(where, value)
        node_id = len(self._ids)
        self._ids[id(value)] = node_id
        self._keep.append(value)
        self._in_progress.add(id(value))
        try:
            node = {"$object": public_name(cls), "id": node_id}
            if kind == "net":
                node.update(self._net(value, where))
            else:
                state = value.__getstate__()
                state = {} if state is None else state  # object.__getstate__ of an object without attributes
                if type(state) is not dict:
                    raise _unsupported(where, value)
                node["state"] = self.encode(state, where)
        finally:
            self._in_progress.discard(id(value))
        return node

    def _net(self, net, where):
        import torch

        params = {k: v for k, v in net.get_params(deep=False).items() if not k.startswith("_")}
        networks, optimizers, attributes = {}, {}, {}
        for name, value in vars(net).items():
            if not name.endswith("_") or name.startswith("_") or name in _NET_REBUILT:
                continue
            if isinstance(value, torch.nn.Module):
                networks[name] = value.state_dict()
            elif isinstance(value, torch.optim.Optimizer):
                optimizers[name] = value.state_dict()
            else:
                attributes[name] = value
        history = getattr(net, "history_", None)
        return {
            "params": self.encode(params, f"{where}.params"),
            "networks": self.encode(networks, f"{where}.networks"),
            "optimizers": self.encode(optimizers, f"{where}.optimizers"),
            "attributes": self.encode(attributes, where),
            "history": self.encode(list(history) if history is not None else None, f"{where}.history"),
            "initialized": bool(getattr(net, "initialized_", False)),
        }


def _is_function(value):
    import types

    return isinstance(value, (types.FunctionType, types.BuiltinFunctionType))


def _unsupported(where, value, named=False):
    what = value if named else type(value)
    return UnsupportedValueError(
        f"{where}: {'' if named else 'a '}{getattr(what, '__module__', '?')}.{getattr(what, '__qualname__', what)} cannot be saved in the safe format "
        "(it is not one of the classes sklearn_ddpm.io._trust allows). Replace it (e.g. memory=None for an "
        "activation cache) or save with joblib.dump.")


class Decoder:
    """Rebuilds objects from a JSON tree and the file's tensors, arrays and blobs."""

    def __init__(self, tensors, arrays, blobs, writer):
        self.tensors, self.arrays, self.blobs = tensors, arrays, blobs
        self.writer = writer  # "sklearn-ddpm X.Y", for messages about files from other versions
        self._objects = {}

    def error(self, where, message):
        return ModelFormatError(f"{where}: {message} (the file was written by {self.writer})")

    def decode(self, node, where="model"):
        if node is None or isinstance(node, (bool, int, float, str)):
            return node
        if isinstance(node, list):
            return [self.decode(v, f"{where}[{i}]") for i, v in enumerate(node)]
        if not isinstance(node, dict):
            raise self.error(where, f"unexpected JSON value {type(node).__name__}")
        kinds = [k for k in node if k.startswith("$")]
        if len(kinds) != 1:
            raise self.error(where, f"a node needs exactly one $kind key, got {kinds}")
        kind = kinds[0]
        handler = getattr(self, "_" + kind[1:], None) if kind[1:].isidentifier() else None
        if handler is None or kind[1:] not in _KINDS:
            raise self.error(where, f"unknown kind of value {kind!r}; it may need a newer sklearn-ddpm")
        try:
            return handler(node, node[kind], where)
        except ModelFormatError:
            raise
        except (KeyError, TypeError, ValueError, IndexError) as exc:
            raise self.error(where, f"malformed {kind} node ({type(exc).__name__}: {exc})") from exc

    # -- plain values ---------------------------------------------------------------------------
    def _scalar(self, node, value, where):
        return np.dtype(_plain_dtype(node["dtype"])).type(self.decode(value, where))

    def _float(self, node, value, where):
        if value not in ("nan", "inf", "-inf"):
            raise ValueError(f"{value!r} is not nan, inf or -inf")
        return float(value)

    def _tuple(self, node, value, where):
        return tuple(self.decode(list(value), where))

    def _dict(self, node, value, where):
        return {str(k): self.decode(v, f"{where}[{k!r}]") for k, v in dict(value).items()}

    def _items(self, node, value, where):
        return {_hashable(self.decode(k, where)): self.decode(v, f"{where}[{k!r}]") for k, v in value}

    def _set(self, node, value, where):
        items = [_hashable(v) for v in self.decode(list(value), where)]
        return frozenset(items) if node.get("frozen") else set(items)

    def _bytes(self, node, key, where):
        return self.blobs[key]

    def _tensor(self, node, key, where):
        return self.tensors[key]

    def _ndarray(self, node, key, where):
        return self.arrays[key]

    def _ndarray_list(self, node, value, where):
        dtype = np.dtype(_plain_dtype(node["dtype"]))
        return np.array(self.decode(value, where), dtype=dtype).reshape([int(s) for s in node["shape"]])

    def _device(self, node, value, where):
        import torch

        return torch.device(str(value))

    def _torch_dtype(self, node, value, where):
        import torch

        dtype = getattr(torch, str(value), None)
        if not isinstance(dtype, torch.dtype):
            raise ValueError(f"{value!r} is not a torch dtype")
        return dtype

    def _numpy_dtype(self, node, value, where):
        return np.dtype(_plain_dtype(value))

    def _path(self, node, value, where):
        from pathlib import Path

        return Path(str(value))

    def _random_state(self, node, value, where):
        state = self.decode(value, where)
        random_state = np.random.RandomState()
        random_state.set_state(state)
        return random_state

    def _torch_generator(self, node, value, where):
        import torch

        generator = torch.Generator(device=str(node.get("device", "cpu")) if _device_usable(node.get("device")) else "cpu")
        generator.set_state(self.decode(value, where))
        return generator

    def _type(self, node, name, where):
        return self._resolve(str(name), where)

    def _ref(self, node, node_id, where):
        if node_id not in self._objects:
            raise ValueError(f"reference to object {node_id}, which comes later or does not exist")
        return self._objects[node_id]

    # -- objects --------------------------------------------------------------------------------
    def _resolve(self, name, where):
        try:
            return resolve(name)
        except PermissionError as exc:
            raise self.error(where, f"{exc}: the safe loader refuses it (was the file crafted?)") from None
        except LookupError as exc:
            raise self.error(where, f"{exc}; it may need another version of sklearn-ddpm") from None

    def _object(self, node, name, where):
        cls = self._resolve(str(name), where)
        kind = trusted_kind(cls)
        if kind == "value":
            raise self.error(where, f"{name!r} may only be a parameter value, not a saved object")
        node_id = node["id"]
        if node_id in self._objects:
            raise ValueError(f"object id {node_id} is used twice")
        if kind == "net":
            obj = self._net(cls, node, where)
        else:
            state = self.decode(node["state"], where)
            if type(state) is not dict:
                raise ValueError("an object's state must be a dict")
            obj = self._estimator(cls, state, where) if kind == "estimator" else self._stateful(cls, state, where)
        self._objects[node_id] = obj
        return obj

    def _estimator(self, cls, state, where):
        # Parameters are the state's names without a leading or trailing underscore. The class itself
        # checks them: its constructor (which only stores, by scikit-learn's rule) refuses unknown
        # names, and get_params tells which ones it took as parameters.
        params = {k: v for k, v in state.items() if not k.startswith("_") and not k.endswith("_")}
        try:
            probe = cls(**params)
        except TypeError as exc:
            raise self.error(where, f"{cls.__name__} does not take the parameters saved for it ({exc}); "
                                    "the file needs the sklearn-ddpm version that wrote it") from None
        known = probe.get_params(deep=False) if hasattr(probe, "get_params") else params
        unknown = sorted(set(params) - set(known))
        if unknown:
            raise self.error(where, f"{cls.__name__} has no parameter(s) {unknown} in this version of "
                                    "sklearn-ddpm; the file needs the version that wrote it")
        # The saved state goes over the constructed object, so a parameter added to the class after
        # the file was written keeps its default (as a missing parameter does in scikit-learn).
        if hasattr(probe, "__setstate__"):
            probe.__setstate__(state)
        else:
            probe.__dict__.update(state)
        return probe

    def _stateful(self, cls, state, where):
        obj = cls.__new__(cls)
        try:
            obj.__setstate__(state)
        except (KeyError, TypeError, ValueError, RuntimeError) as exc:
            raise self.error(where, f"{cls.__name__} could not be rebuilt from the saved state "
                                    f"({type(exc).__name__}: {exc})") from exc
        return obj

    def _net(self, cls, node, where):
        import torch
        from skorch.history import History

        params = self.decode(node["params"], f"{where}.params")
        device = params.get("device", "cpu")
        if not _device_usable(device):
            params["device"] = "cpu"  # as skorch's unpickling does; load_segmenter warns and moves it
        try:
            net = cls(**params)
        except (TypeError, ValueError) as exc:
            raise self.error(where, f"{cls.__name__} does not take the parameters saved for it ({exc})") from None
        if node.get("initialized", True):
            # Initialising draws the networks' random initial weights: keep the caller's RNG untouched.
            with torch.random.fork_rng(devices=[]), warnings.catch_warnings():
                warnings.simplefilter("ignore", UserWarning)
                net.initialize()
        for group in ("networks", "optimizers"):
            for name, state in self.decode(node[group], f"{where}.{group}").items():
                target = getattr(net, name, None)
                if target is None or not hasattr(target, "load_state_dict"):
                    raise self.error(where, f"{cls.__name__} has no {name} to load the saved state into")
                try:
                    if group == "networks":
                        target.load_state_dict(state, strict=True)
                    else:
                        target.load_state_dict(state)
                except (RuntimeError, ValueError, KeyError) as exc:
                    raise self.error(where, f"the saved {name} does not fit the network the parameters build "
                                            f"({str(exc).splitlines()[0]})") from None
        history = self.decode(node["history"], f"{where}.history")
        if history is not None:
            net.history_ = History(history)
        for name, value in self.decode(node["attributes"], where).items():
            setattr(net, name, value)
        return net


_KINDS = frozenset({"scalar", "float", "tuple", "dict", "items", "set", "bytes", "tensor", "ndarray", "ndarray_list",
                    "device", "torch_dtype", "numpy_dtype", "path", "random_state", "torch_generator", "type", "ref",
                    "object"})


def _plain_dtype(text):
    dtype = np.dtype(str(text))
    if dtype.kind not in "biufcUSO?" or dtype.fields is not None:
        raise ValueError(f"dtype {text!r} is not a plain dtype")
    return dtype


def _hashable(value):
    return tuple(_hashable(v) for v in value) if isinstance(value, list) else value


def _device_usable(device):
    import torch

    if device is None:
        return True
    try:
        device = torch.device(str(device))
    except (RuntimeError, TypeError):
        return False
    return device.type == "cpu" or (device.type == "cuda" and torch.cuda.is_available()) or \
        (device.type == "mps" and torch.backends.mps.is_available())
