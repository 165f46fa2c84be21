"""A Loki protobuf sender as Promtail is one: builds `logproto.PushRequest`
from tests/loki/push.proto (compiled here with grpcio-tools), compresses it
with snappy's block format and POSTs it as application/x-protobuf.

Reads {"url", "streams": [{"labels", "entries": [{"ns", "line",
"metadata"?}]}]} as JSON on stdin; prints {"status", "body"}.
"""

import importlib
import json
import os
import sys
import tempfile
import urllib.error
import urllib.request

import cramjam
from grpc_tools import protoc

here = os.path.dirname(os.path.abspath(__file__))
out = tempfile.mkdtemp()
include = os.path.join(os.path.dirname(protoc.__file__), "_proto")
if protoc.main(["protoc", f"-I{here}", f"-I{include}", f"--python_out={out}", "push.proto"]) != 0:
    sys.exit("protoc failed")
sys.path.insert(0, out)
push_pb2 = importlib.import_module("push_pb2")

spec = json.load(sys.stdin)
req = push_pb2.PushRequest()
for s in spec["streams"]:
    stream = req.streams.add(labels=s["labels"])
    for e in s["entries"]:
        entry = stream.entries.add(line=e["line"])
        entry.timestamp.seconds, entry.timestamp.nanos = divmod(e["ns"], 1_000_000_000)
        for name, value in e.get("metadata", {}).items():
            entry.structuredMetadata.add(name=name, value=value)

body = bytes(cramjam.snappy.compress_raw(req.SerializeToString()))
request = urllib.request.Request(
    spec["url"], data=body, method="POST", headers={"Content-Type": "application/x-protobuf"}
)
try:
    with urllib.request.urlopen(request) as resp:
        status, text = resp.status, resp.read().decode()
except urllib.error.HTTPError as e:
    status, text = e.code, e.read().decode()
print(json.dumps({"status": status, "body": text}))
