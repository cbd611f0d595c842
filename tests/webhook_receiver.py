"""A real HTTP receiver of webhooks for the tests: it fails a share of calls on purpose.

Run as ``python -m tests.webhook_receiver PORT LOG FAIL_RATE``. Each delivery it accepts is
appended to LOG (one JSON line: headers and body) and flushed to disk before it answers 204;
the others get a 500 (or, one in three, a dropped connection). Killed and started again on the
same port, it goes on appending to the same log.
"""

import json
import os
import random
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any


def main(port: int, log: Path, fail_rate: float) -> None:
    chance = random.Random()
    out = log.open("a", encoding="utf-8")

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("content-length", "0")))
            roll = chance.random()
            if roll < fail_rate / 3:
                self.close_connection = True
                self.connection.close()
                return
            if roll < fail_rate:
                self.send_response(500)
                self.send_header("content-length", "0")
                self.end_headers()
                return
            line: dict[str, Any] = {
                "headers": {k.lower(): v for k, v in self.headers.items()},
                "body": body.decode(),
            }
            out.write(json.dumps(line) + "\n")
            out.flush()
            os.fsync(out.fileno())
            self.send_response(204)
            self.send_header("content-length", "0")
            self.end_headers()

        def log_message(self, *_: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    server.daemon_threads = True
    sys.stdout.write("ready\n")
    sys.stdout.flush()
    server.serve_forever()


if __name__ == "__main__":
    main(int(sys.argv[1]), Path(sys.argv[2]), float(sys.argv[3]))
