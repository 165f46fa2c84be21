"""Sends two PushLogRequest messages on one PushLog call (a unary method
called as a client stream, with grpcio). argv[1] is HOST:PORT, argv[2] the
service. Prints the status code and the details."""

import sys

import grpc


def request(service, message):
    s, m = service.encode(), message.encode()
    entry = b"\x0a" + bytes([len(s)]) + s + b"\x1a" + bytes([len(m)]) + m
    return b"\x0a" + bytes([len(entry)]) + entry


target, service = sys.argv[1], sys.argv[2]
call = grpc.insecure_channel(target).stream_unary("/taillight.v1.LogService/PushLog")
try:
    call(iter([request(service, "one"), request(service, "two")]), timeout=30)
    print("OK")
except grpc.RpcError as e:
    print(e.code().name, e.details(), sep="\n")
