"""Values that cross between the judge and the learner's worker: by value, and read without running code.

The judge (the process that runs the hidden tests and decides the verdicts) never
unpickles anything the worker sends: pickle runs whatever code its data names. A
message here is a JSON tree plus binary buffers, and each kind of value has one way
to be written and read:

- JSON's own scalars, lists, and tagged tuples, dicts (keys of any kind), sets, bytes;
- dates, times and durations, paths;
- NumPy arrays and scalars of plain dtypes (never ``object``), read with ``frombuffer``;
- pandas frames and series, and Arrow tables, as Arrow IPC streams;
- PyTorch tensors as NumPy buffers (values only: the graph and the gradient stay behind);
- dataclasses and named tuples that the given code defines (``casestudy``), rebuilt
  from their fields with the given class;
- exceptions, as their class names, message and where in the learner's code they rose.

Anything else, a live object such as a model or a connection, does not cross: the
side that holds it sends a reference (``Ref``) that the other side can only name in
later calls. In the other direction, the judge may send a reference to a function of
the given code (``Given``), which the worker imports by name: how a test builds a
connection or a model beside the learner's code without handing it a live object.
"""

from __future__ import annotations

import collections
import dataclasses
import datetime
import importlib
import io
import json
import math
import pathlib
import socket
import struct
import time
from dataclasses import dataclass
from functools import partial

import numpy as np

# Modules whose classes and functions may be named in a message: the course's given
# code and the grader's public drivers, which both sides import from the same read-only files.
GIVEN_MODULES = ("casestudy", "autograder.drivers")
MAX_MESSAGE_BYTES = 1 << 30  # a whole frame; more is a submission trying to exhaust the judge's memory
MAX_DEPTH = 100


class CodecError(ValueError):
    """A value that cannot cross, or a message that is not one this codec writes."""


@dataclass(frozen=True)
class Ref:
    """A live object that stays where it was made; the number names it there."""

    id: int
    type: str  # the object's class, for messages: "duckdb.DuckDBPyConnection"


@dataclass(frozen=True)
class Given:
    """A function or class of the given code, named so that the other side imports its own copy."""

    module: str
    qualname: str


@dataclass(frozen=True)
class RaisedError:
    """An exception raised on the other side, by value."""

    types: tuple[str, ...]  # the qualified names of its class and bases, most derived first
    message: str
    where: str  # " (in f, line 3)": the innermost frame in the learner's code, or ""
    not_implemented: bool = False  # raised by, or while handling, a NotImplementedError: an untouched exercise


def encode(value, keep=None, allow_given: bool = False, references: tuple[type, ...] = ()) -> bytes:
    """One message holding ``value``.

    ``keep(obj) -> Ref`` is asked for each object that cannot cross by value, and for
    every instance of ``references`` (the judge's stand-ins for the worker's objects);
    without it, such an object is an error. ``allow_given`` lets references to given
    functions through (only the judge sends those).
    """
    buffers: list[bytes] = []
    tree = _Encoder(buffers, keep, allow_given, references).tree(value, 0)
    header = json.dumps(tree, allow_nan=True, separators=(",", ":")).encode()
    parts = [struct.pack("<II", len(header), len(buffers)), header]
    for buffer in buffers:
        parts += [struct.pack("<Q", len(buffer)), buffer]
    return b"".join(parts)


def decode(message: bytes, resolve=None, allow_given: bool = False):
    """The value in ``message``; ``resolve(Ref)`` turns a reference back into what it names here."""
    try:
        header_size, count = struct.unpack_from("<II", message, 0)
        at = 8 + header_size
        tree = json.loads(message[8:at])
        buffers = []
        for _ in range(count):
            (size,) = struct.unpack_from("<Q", message, at)
            if at + 8 + size > len(message):
                raise CodecError("the message ends inside one of its buffers")
            buffers.append(memoryview(message)[at + 8 : at + 8 + size])
            at += 8 + size
    except (struct.error, json.JSONDecodeError, UnicodeDecodeError, RecursionError) as e:
        raise CodecError(f"not a message of this codec: {e}") from None
    return _Decoder(buffers, resolve, allow_given).value(tree, 0)


class _Encoder:
    def __init__(self, buffers: list[bytes], keep, allow_given: bool, references: tuple[type, ...]):
        self.buffers, self.keep, self.allow_given, self.references = buffers, keep, allow_given, references

    def buffer(self, data) -> int:
        self.buffers.append(bytes(data))
        return len(self.buffers) - 1

    def tree(self, value, depth: int):
        if depth > MAX_DEPTH:
            raise CodecError(f"values nested more than {MAX_DEPTH} deep cannot cross")
        down = depth + 1
        if value is None or isinstance(value, (bool, str)):
            return value
        if self.references and isinstance(value, self.references):
            return self.reference(self.keep(value))
        if type(value) is int:
            return value if abs(value) < 2**53 else {"$": "int", "v": str(value)}
        if type(value) is float:
            return value if math.isfinite(value) else {"$": "float", "v": repr(value)}
        if type(value) is list:
            return [self.tree(v, down) for v in value]
        if type(value) is tuple:
            return {"$": "tuple", "v": [self.tree(v, down) for v in value]}
        if type(value) in (dict, collections.OrderedDict):  # a state_dict is an OrderedDict
            return {"$": "dict", "v": [[self.tree(k, down), self.tree(v, down)] for k, v in value.items()]}
        if type(value) in (set, frozenset):
            return {"$": type(value).__name__, "v": [self.tree(v, down) for v in value]}
        if type(value) is range:
            return {"$": "range", "v": [value.start, value.stop, value.step]}
        if type(value) in (bytes, bytearray):
            return {"$": "bytes", "b": self.buffer(value)}
        if isinstance(value, (Ref, Given)):
            return self.reference(value)
        if isinstance(value, BaseException):
            return {"$": "error", "v": self.tree(raised(value), down)}
        if isinstance(value, RaisedError):
            return {
                "$": "raised",
                "types": list(value.types),
                "message": value.message,
                "where": value.where,
                "not_implemented": value.not_implemented,
            }
        try:
            encoded = self.library_value(value, down)
        except CodecError:
            if self.keep is None:
                raise
            encoded = None  # a frame with Python objects in a column, say: it stays where it is
        if encoded is not None:
            return encoded
        if self.keep is None:
            raise CodecError(f"a {_type_name(value)} cannot be sent by value")
        return self.reference(self.keep(value))

    def reference(self, value):
        if isinstance(value, Ref):
            return {"$": "ref", "id": value.id, "type": value.type}
        if not self.allow_given:
            raise CodecError("only the judge names given functions")
        return {"$": "given", "module": value.module, "qualname": value.qualname}

    def library_value(self, value, depth: int):
        """Values of the standard library, NumPy, pandas, Arrow, PyTorch and the given code; None for others."""
        kind = type(value)
        if kind is datetime.datetime:
            return {"$": "datetime", "v": value.isoformat()}
        if kind is datetime.date:
            return {"$": "date", "v": value.isoformat()}
        if kind is datetime.timedelta:
            return {"$": "timedelta", "v": [value.days, value.seconds, value.microseconds]}
        if isinstance(value, pathlib.PurePath):
            return {"$": "path", "v": str(value)}
        if isinstance(value, np.ndarray):
            return self.array(value)
        if isinstance(value, np.generic):
            return {"$": "npscalar", "v": self.array(np.asarray(value))}
        module = kind.__module__.split(".")[0]
        if module == "pandas":
            return self.pandas_value(value)
        if module == "pyarrow":
            return self.arrow_value(value)
        if module == "torch":
            return self.tensor(value)
        if kind is partial and _given_name(value.func) is not None and self.allow_given:
            return {"$": "partial", "func": self.tree(value.func, depth), "args": self.tree(value.args, depth)}
        record = _given_name(kind)
        if record is not None and not isinstance(value, type):
            if dataclasses.is_dataclass(value):
                fields = {f.name: getattr(value, f.name) for f in dataclasses.fields(value) if f.init}
                return {"$": "record", "type": ":".join(record), "v": self.tree(fields, depth)}
            if isinstance(value, tuple) and hasattr(kind, "_fields"):
                return {"$": "record", "type": ":".join(record), "v": self.tree(dict(value._asdict()), depth)}
        name = _given_name(value) if callable(value) else None
        if name is not None and self.allow_given:
            return self.reference(Given(*name))
        return None

    def array(self, array: np.ndarray):
        if array.dtype.hasobject or array.dtype.kind == "V":
            raise CodecError(f"an array of dtype {array.dtype} cannot be sent by value (only numbers, text and dates)")
        return {"$": "array", "dtype": array.dtype.str, "shape": list(array.shape), "b": self.buffer(array.tobytes())}

    def pandas_value(self, value):
        import pandas as pd

        if isinstance(value, pd.DataFrame):
            return {"$": "frame", "b": self.buffer(_arrow_stream(_frame_table(value)))}
        if isinstance(value, pd.Series):
            frame = value.to_frame(name="__series__")
            return {"$": "series", "name": self.tree(value.name, 1), "b": self.buffer(_arrow_stream(_frame_table(frame)))}
        if value is pd.NaT:
            return {"$": "nat"}
        if isinstance(value, pd.Timestamp):
            return {"$": "timestamp", "v": value.isoformat()}
        if isinstance(value, pd.Timedelta):
            return {"$": "pdtimedelta", "v": value.value}
        return None

    def arrow_value(self, value):
        import pyarrow as pa

        if isinstance(value, (pa.Table, pa.RecordBatch)):
            return {"$": "arrow", "b": self.buffer(_arrow_stream(pa.table(value)))}
        return None

    def tensor(self, value):
        import torch

        if isinstance(value, torch.device):
            return {"$": "device", "v": str(value)}
        if isinstance(value, torch.dtype):
            return {"$": "dtype", "v": str(value).removeprefix("torch.")}
        if not isinstance(value, torch.Tensor):
            return None
        # Where it lives and whether it needs a gradient travel too: tests check both.
        tree = {"$": "tensor", "device": str(value.device), "requires_grad": value.requires_grad}
        tree["dtype"] = str(value.dtype).removeprefix("torch.")
        if value.device.type == "meta":  # a tensor without data: its shape is all there is
            return {**tree, "shape": list(value.shape)}
        value = value.detach().cpu()
        if value.dtype == torch.bfloat16:  # NumPy has no bfloat16: its bits travel as int16
            return {**tree, "v": self.array(value.view(torch.int16).numpy())}
        return {**tree, "v": self.array(value.numpy())}


def _frame_table(frame):
    import pyarrow as pa

    try:
        return pa.Table.from_pandas(frame)
    except (pa.ArrowException, TypeError, ValueError) as e:
        raise CodecError(f"a DataFrame whose columns Arrow cannot hold cannot be sent by value: {e}") from None


def _arrow_stream(table) -> bytes:
    import pyarrow as pa

    sink = io.BytesIO()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return sink.getvalue()


class _Decoder:
    def __init__(self, buffers: list[memoryview], resolve, allow_given: bool):
        self.buffers, self.resolve, self.allow_given = buffers, resolve, allow_given

    def buffer(self, index) -> memoryview:
        if type(index) is not int or not 0 <= index < len(self.buffers):
            raise CodecError("a value names a buffer the message does not hold")
        return self.buffers[index]

    def value(self, tree, depth: int):
        if depth > MAX_DEPTH:
            raise CodecError(f"values nested more than {MAX_DEPTH} deep cannot cross")
        if tree is None or isinstance(tree, (bool, int, float, str)):
            return tree
        down = depth + 1
        if isinstance(tree, list):
            return [self.value(v, down) for v in tree]
        if not isinstance(tree, dict) or not isinstance(tree.get("$"), str):
            raise CodecError("a value of no known kind")
        read = getattr(self, "read_" + tree["$"], None)
        if read is None:
            raise CodecError(f"a value of unknown kind {tree['$']!r}")
        try:
            return read(tree, down)
        except CodecError:
            raise
        except (KeyError, TypeError, ValueError, OverflowError) as e:
            raise CodecError(f"a malformed {tree['$']}: {type(e).__name__}: {e}") from None

    def items(self, tree, depth):
        if not isinstance(tree["v"], list):
            raise CodecError("a collection without a list of items")
        return [self.value(v, depth) for v in tree["v"]]

    def read_int(self, tree, depth):
        return int(tree["v"])

    def read_float(self, tree, depth):
        return float(tree["v"])

    def read_tuple(self, tree, depth):
        return tuple(self.items(tree, depth))

    def read_dict(self, tree, depth):
        return {k: v for k, v in (self.pair(item, depth) for item in tree["v"])}

    def pair(self, item, depth):
        if not isinstance(item, list) or len(item) != 2:
            raise CodecError("a dict item that is not a pair")
        return self.value(item[0], depth), self.value(item[1], depth)

    def read_set(self, tree, depth):
        return set(self.items(tree, depth))

    def read_frozenset(self, tree, depth):
        return frozenset(self.items(tree, depth))

    def read_range(self, tree, depth):
        start, stop, step = (int(n) for n in tree["v"])
        return range(start, stop, step)

    def read_bytes(self, tree, depth):
        return bytes(self.buffer(tree["b"]))

    def read_datetime(self, tree, depth):
        return datetime.datetime.fromisoformat(tree["v"])

    def read_date(self, tree, depth):
        return datetime.date.fromisoformat(tree["v"])

    def read_timedelta(self, tree, depth):
        return datetime.timedelta(*tree["v"])

    def read_path(self, tree, depth):
        return pathlib.Path(tree["v"])

    def read_array(self, tree, depth):
        dtype = np.dtype(tree["dtype"])
        if dtype.hasobject or dtype.kind == "V":
            raise CodecError(f"an array of dtype {dtype} is never sent")
        shape = tuple(int(n) for n in tree["shape"])
        return np.frombuffer(self.buffer(tree["b"]), dtype=dtype).reshape(shape).copy()

    def read_npscalar(self, tree, depth):
        return self.read_array(tree["v"], depth)[()]

    def read_frame(self, tree, depth):
        return _read_arrow(self.buffer(tree["b"])).to_pandas()

    def read_series(self, tree, depth):
        series = _read_arrow(self.buffer(tree["b"])).to_pandas()["__series__"]
        return series.rename(self.value(tree["name"], depth))

    def read_nat(self, tree, depth):
        import pandas as pd

        return pd.NaT

    def read_timestamp(self, tree, depth):
        import pandas as pd

        return pd.Timestamp(tree["v"])

    def read_pdtimedelta(self, tree, depth):
        import pandas as pd

        return pd.Timedelta(int(tree["v"]))

    def read_arrow(self, tree, depth):
        return _read_arrow(self.buffer(tree["b"]))

    def read_tensor(self, tree, depth):
        import torch

        dtype = getattr(torch, str(tree["dtype"]), None)
        if not isinstance(dtype, torch.dtype):
            raise CodecError(f"a tensor of unknown dtype {tree['dtype']!r}")
        try:
            device = torch.device(str(tree["device"]))
            if device.type not in ("cpu", "meta"):
                torch.empty(0, device=device)  # a device this machine has
        except (RuntimeError, AssertionError) as e:
            raise CodecError(f"a tensor on a device this machine cannot hold ({e})") from None
        if device.type == "meta":
            tensor = torch.empty([int(n) for n in tree["shape"]], dtype=dtype, device=device)
        else:
            array = self.read_array(tree["v"], depth)
            tensor = torch.from_numpy(array).view(dtype) if dtype == torch.bfloat16 else torch.from_numpy(array).to(dtype)
            tensor = tensor.to(device) if device.type != "cpu" else tensor
        return tensor.requires_grad_() if tree["requires_grad"] is True and tensor.is_floating_point() else tensor

    def read_device(self, tree, depth):
        import torch

        return torch.device(str(tree["v"]))

    def read_dtype(self, tree, depth):
        import torch

        dtype = getattr(torch, str(tree["v"]), None)
        if not isinstance(dtype, torch.dtype):
            raise CodecError(f"an unknown dtype {tree['v']!r}")
        return dtype

    def read_record(self, tree, depth):
        kind = _import_given(tree["type"], "record")
        fields = self.value(tree["v"], depth)
        if not isinstance(fields, dict) or not (dataclasses.is_dataclass(kind) or hasattr(kind, "_fields")):
            raise CodecError(f"{tree['type']} is not a record of the given code")
        return kind(**fields)

    def read_error(self, tree, depth):
        return self.value(tree["v"], depth)

    def read_raised(self, tree, depth):
        types = tree["types"]
        if not isinstance(types, list) or not all(isinstance(t, str) for t in types) or not types:
            raise CodecError("an error without its class names")
        return RaisedError(tuple(types), str(tree["message"]), str(tree["where"]), tree["not_implemented"] is True)

    def read_ref(self, tree, depth):
        ref = Ref(int(tree["id"]), str(tree["type"]))
        return ref if self.resolve is None else self.resolve(ref)

    def read_given(self, tree, depth):
        if not self.allow_given:
            raise CodecError("a reference to given code, which only the judge may send")
        return _import_given(f"{tree['module']}:{tree['qualname']}", "function")

    def read_partial(self, tree, depth):
        if not self.allow_given:
            raise CodecError("a partial of given code, which only the judge may send")
        return partial(self.value(tree["func"], depth), *self.value(tree["args"], depth))


def _read_arrow(buffer: memoryview):
    import pyarrow as pa

    try:
        return pa.ipc.open_stream(buffer).read_all()
    except (pa.ArrowException, OSError) as e:
        raise CodecError(f"a malformed Arrow stream: {e}") from None


def _given_name(obj) -> tuple[str, str] | None:
    module, qualname = getattr(obj, "__module__", None), getattr(obj, "__qualname__", None)
    if not isinstance(module, str) or not isinstance(qualname, str) or "<" in qualname:
        return None
    return (module, qualname) if _is_given(module) else None


def _is_given(module: str) -> bool:
    return any(module == given or module.startswith(given + ".") for given in GIVEN_MODULES)


def _import_given(name: str, what: str):
    if not isinstance(name, str) or ":" not in name:
        raise CodecError(f"a {what} named {name!r}, not module:name")
    module, qualname = name.split(":", 1)
    if not _is_given(module):
        raise CodecError(f"a {what} from {module!r}, which is not given code")
    obj = importlib.import_module(module)
    for part in qualname.split("."):
        obj = getattr(obj, part, None)
        if obj is None:
            raise CodecError(f"the given code has no {name}")
    return obj


def raised(error: BaseException, where: str = "", not_implemented: bool = False) -> RaisedError:
    """An exception as the other side will see it."""
    types = tuple(f"{t.__module__}.{t.__qualname__}" for t in type(error).__mro__ if issubclass(t, BaseException))
    try:
        message = str(error)
    except Exception:  # a learner's exception whose __str__ raises
        message = "(its message could not be read)"
    return RaisedError(types, message[:10_000], where, not_implemented)


def send(connection: socket.socket, message: bytes) -> None:
    """One message, its length first."""
    connection.sendall(struct.pack("<Q", len(message)) + message)


def receive(connection: socket.socket, limit: int = MAX_MESSAGE_BYTES, deadline: float | None = None) -> bytes | None:
    """The next message; None if the other side closed the connection first.

    Past ``deadline`` (a ``time.monotonic()`` time), TimeoutError, however the bytes trickle in.
    """
    head = _read_exactly(connection, 8, deadline)
    if head is None:
        return None
    (size,) = struct.unpack("<Q", head)
    if size > limit:
        raise CodecError(f"a message of {size:,} bytes, more than the {limit:,} allowed")
    return _read_exactly(connection, size, deadline)


def _read_exactly(connection: socket.socket, size: int, deadline: float | None) -> bytes | None:
    data = bytearray(size)
    view, got = memoryview(data), 0
    while got < size:
        connection.settimeout(None if deadline is None else max(1e-3, deadline - time.monotonic()))
        n = connection.recv_into(view[got:])
        if n == 0:
            return None
        got += n
    return bytes(data)


def _type_name(value) -> str:
    kind = type(value)
    return f"{kind.__module__}.{kind.__qualname__}"
