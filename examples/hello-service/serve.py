"""The vupdate sample service: answers every GET with the version it was built as.

It listens on 127.0.0.1, on the port in the environment variable HELLO_PORT or, if that is
not set, on a free port; it writes the port it got to the file `port` in its working
directory, so a person (or a test) can find it. Log lines go to stdout in the
`date LEVEL unit message` format the updater parses.
"""

import datetime
import http.server
import os
import sys


def log(level, message):
    now = datetime.datetime.now().strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]
    print(f"{now} {level} hello {message}", flush=True)


VERSION = open("version.txt").read().strip()
ROLE = sys.argv[1] if len(sys.argv) > 1 else ""


class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = f"{VERSION}\n".encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format, *args):
        log("INFO", format % args)


server = http.server.HTTPServer(("127.0.0.1", int(os.environ.get("HELLO_PORT", "0"))), Handler)
port = server.server_address[1]
with open("port.tmp", "w") as f:
    f.write(f"{port}\n")
os.replace("port.tmp", "port")
log("INFO", f"hello {VERSION} (role {ROLE or 'none'}) serving on 127.0.0.1:{port}")
server.serve_forever()
