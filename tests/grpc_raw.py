"""Sends one raw request message (given as hex) to a unary gRPC method with
grpcio, so a test can send what no generated client would. argv: HOST:PORT,
the method path, the payload in hex. Prints the status code name, then the
details (OK and nothing when the call succeeded)."""

import sys

import grpc

target, method, payload = sys.argv[1], sys.argv[2], bytes.fromhex(sys.argv[3])
call = grpc.insecure_channel(target).unary_unary(method)
try:
    call(payload, timeout=30)
    print("OK")
except grpc.RpcError as e:
    print(e.code().name, e.details(), sep="\n")
