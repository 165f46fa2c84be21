"""Ships Python `logging` records with python-logging-loki's LokiHandler,
as an application using it would. argv: push URL, app name."""

import logging
import sys

import logging_loki

url, app = sys.argv[1], sys.argv[2]
handler = logging_loki.LokiHandler(url=url, tags={"app": app, "env": "test"}, version="1")
log = logging.getLogger("billing")
log.setLevel(logging.DEBUG)
log.propagate = False
log.addHandler(handler)

failures = []
handler.handleError = lambda record: failures.append(sys.exc_info()[1])

log.info("invoice sent", extra={"tags": {"customer": "c-7"}})
log.warning("retrying in %ds", 5)
log.error("card declined")
log.critical("ledger offline")

if failures:
    sys.exit(f"the handler failed: {failures}")
