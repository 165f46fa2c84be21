"""Ships Python `logging` records to taillight with the OpenTelemetry SDK,
set up as any application would be: the endpoint, service name and
compression come from the standard OTEL_* variables, nothing else.

argv[1] is the exporter, `grpc` or `http`. Logs four records (the third in
a span, with an exception; the fourth with a map body) and prints the
span's trace and span ids as JSON.
"""

import json
import logging
import sys

from opentelemetry._logs import set_logger_provider
from opentelemetry.sdk._logs import LoggerProvider, LoggingHandler
from opentelemetry.sdk._logs.export import BatchLogRecordProcessor
from opentelemetry.sdk.trace import TracerProvider

if sys.argv[1] == "grpc":
    from opentelemetry.exporter.otlp.proto.grpc._log_exporter import OTLPLogExporter
else:
    from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter

provider = LoggerProvider()
provider.add_log_record_processor(BatchLogRecordProcessor(OTLPLogExporter()))
set_logger_provider(provider)

log = logging.getLogger("shop.orders")
log.setLevel(logging.DEBUG)
log.propagate = False
log.addHandler(LoggingHandler(logger_provider=provider))

log.info("order placed", extra={"order_id": 42, "tags": ["checkout", "eu"]})
log.warning("stock low: %d left", 3)
with TracerProvider().get_tracer("shop").start_as_current_span("pay") as span:
    ids = span.get_span_context()
    try:
        1 / 0
    except ZeroDivisionError:
        log.exception("payment failed")
log.debug({"cart": {"items": 2}, "ok": True})

provider.shutdown()
print(json.dumps({"trace_id": format(ids.trace_id, "032x"), "span_id": format(ids.span_id, "016x")}))
