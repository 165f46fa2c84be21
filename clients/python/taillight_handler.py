"""A `logging` handler that ships Python log records to taillight over gRPC.

    import logging
    from taillight_handler import TaillightHandler

    handler = TaillightHandler("127.0.0.1:50051", service="billing")
    logging.getLogger().addHandler(handler)
    logging.warning("card declined", extra={"order": 42, "tags": ["payments"]})

Records are batched and sent by a background thread (`PushLogs`), retried
with backoff while the server is away, and held in a bounded queue: when it
is full, new records are dropped and counted (`handler.dropped`), so
logging never blocks the application. `handler.close()` (run by
`logging.shutdown()` at exit) sends what is still queued.

The stubs come from taillight's `proto/`:
    python -m grpc_tools.protoc -I proto --python_out=. --grpc_python_out=. proto/taillight/v1/logs.proto
"""

import logging
import queue
import threading
import time

import grpc
from google.protobuf.timestamp_pb2 import Timestamp

from taillight.v1 import logs_pb2, logs_pb2_grpc

# logging's levels as taillight's: TRACE 1 .. FATAL 6.
_LEVELS = [(logging.CRITICAL, 6), (logging.ERROR, 5), (logging.WARNING, 4), (logging.INFO, 3), (logging.DEBUG, 2)]
# Attributes every LogRecord has; what a caller adds with `extra` is the rest.
_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime"}


def _level(levelno):
    for threshold, level in _LEVELS:
        if levelno >= threshold:
            return level
    return 1


class TaillightHandler(logging.Handler):
    """Ships records to the taillight server at `server` (HOST:PORT), with
    the API key `key` when the server requires one. Over TLS when `tls` is
    true or `ca_cert` names the PEM CA certificate the server's certificate
    chains to (otherwise the system's roots are used)."""

    def __init__(self, server, service, buffer=10_000, batch=500, linger=0.2, key=None,
                 tls=False, ca_cert=None):
        super().__init__()
        self._metadata = (("authorization", f"Bearer {key}"),) if key else ()
        self.service = service
        self.batch = batch
        self.linger = linger
        self.dropped = 0
        self.refused = None
        self.sent = 0
        self._queue = queue.Queue(maxsize=buffer)
        if tls or ca_cert:
            roots = open(ca_cert, "rb").read() if ca_cert else None
            channel = grpc.secure_channel(server, grpc.ssl_channel_credentials(root_certificates=roots))
        else:
            channel = grpc.insecure_channel(server)
        self._stub = logs_pb2_grpc.LogServiceStub(channel)
        self._closing = threading.Event()
        self._thread = threading.Thread(target=self._ship, name="taillight", daemon=True)
        self._thread.start()

    def emit(self, record):
        try:
            entry = self._entry(record)
        except Exception:  # a record that cannot be formatted must not break the caller
            self.handleError(record)
            return
        try:
            self._queue.put_nowait(entry)
        except queue.Full:
            self.dropped += 1

    def _entry(self, record):
        message = record.getMessage()
        if record.exc_info:
            message += "\n" + logging.Formatter().formatException(record.exc_info)
        attributes = {"logger": record.name, "module": record.module, "line": str(record.lineno)}
        tags = []
        for key, value in vars(record).items():
            if key in _STANDARD:
                continue
            if key == "tags":
                tags = [str(t) for t in value] if isinstance(value, (list, tuple)) else str(value).split(",")
            else:
                attributes[key] = str(value)
        ts = Timestamp()
        ts.FromNanoseconds(int(record.created * 1e9))
        return logs_pb2.LogEntry(
            service=self.service, level=_level(record.levelno), message=message,
            tags=[t.strip() for t in tags if t.strip()], attributes=attributes, time=ts,
        )

    def _next_batch(self):
        try:
            batch = [self._queue.get(timeout=0.5)]
        except queue.Empty:
            return []
        deadline = time.monotonic() + self.linger
        while len(batch) < self.batch:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            try:
                batch.append(self._queue.get(timeout=left))
            except queue.Empty:
                break
        return batch

    def _ship(self):
        while not (self._closing.is_set() and self._queue.empty()):
            batch = self._next_batch()
            pause = 0.1
            while batch:
                try:
                    self._stub.PushLogs(iter([logs_pb2.PushLogsRequest(entries=batch)]), timeout=30,
                                        metadata=self._metadata)
                    self.sent += len(batch)
                    batch = []
                except grpc.RpcError as e:
                    if e.code() == grpc.StatusCode.INVALID_ARGUMENT:
                        # Those before the refused entry are stored.
                        accepted = dict(e.trailing_metadata() or ()).get("accepted", "0")
                        n = int(accepted) if accepted.isdigit() else 0
                        self.sent += n
                        batch = batch[n + 1:]
                    elif e.code() in (grpc.StatusCode.UNAUTHENTICATED, grpc.StatusCode.PERMISSION_DENIED):
                        # A missing or insufficient key does not fix itself.
                        self.refused = e.details()
                        self.dropped += len(batch)
                        batch = []
                    elif self._closing.is_set() and time.monotonic() > self._give_up:
                        self.dropped += len(batch)
                        batch = []
                    else:
                        time.sleep(pause)
                        pause = min(pause * 2, 10.0)

    def close(self, timeout=5.0):
        """Sends what is queued, for up to `timeout` seconds."""
        self._give_up = time.monotonic() + timeout
        self._closing.set()
        self._thread.join(timeout)
        super().close()
