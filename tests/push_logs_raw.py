"""Sends PushLogs frames as raw bytes with grpcio: a valid batch of two
entries of service argv[2], then a frame that is not protobuf. Prints the
status code, the details and the `accepted` trailer. argv[1] is HOST:PORT."""

import sys

import grpc


def entry(service, message):
    s, m = service.encode(), message.encode()
    body = b"\x0a" + bytes([len(s)]) + s + b"\x1a" + bytes([len(m)]) + m
    return b"\x0a" + bytes([len(body)]) + body


target, service = sys.argv[1], sys.argv[2]
batch = entry(service, "first") + entry(service, "second")
# A length-delimited field whose length runs past the end: not decodable.
garbage = b"\x0a\xff\xff\xff\x0f"
call = grpc.insecure_channel(target).stream_unary("/taillight.v1.LogService/PushLogs")
try:
    call(iter([batch, garbage]), timeout=30)
    print("OK")
except grpc.RpcError as e:
    accepted = dict(e.trailing_metadata() or ()).get("accepted")
    print(e.code().name, accepted, e.details(), sep="\n")
