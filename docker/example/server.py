"""The example application of docker/Dockerfile: a small HTTP server that serves the socket
scinit passes at fd 3 (socket activation), so it never binds the port itself and a restart never
closes it, and that tells scinit when it is ready (sd_notify), so a start-first restart stops
the old server only once the new one serves."""

import http.server
import os
import signal
import socket
import threading


class Hello(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = f"hello from pid {os.getpid()}\n".encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


def notify(state):
    """sd_notify: one datagram to $NOTIFY_SOCKET (a leading @ is an abstract address)."""
    address = os.environ.get("NOTIFY_SOCKET")
    if not address:
        return
    if address.startswith("@"):
        address = "\0" + address[1:]
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.connect(address)
        sock.sendall(state.encode())


# The fds are for us only if LISTEN_PID names our own pid (systemd's sd_listen_fds rule).
inherited = os.environ.get("LISTEN_PID") == str(os.getpid()) and int(os.environ.get("LISTEN_FDS", "0")) > 0
server = http.server.ThreadingHTTPServer(("0.0.0.0", 8080), Hello, bind_and_activate=not inherited)
if inherited:
    server.socket.close()
    server.socket = socket.socket(fileno=3)

# SIGTERM (from scinit, on `docker stop` or once a restarted server is ready): finish the
# requests in flight and exit 0. Connections not yet accepted stay in the socket's backlog,
# which scinit keeps open for the other server.
signal.signal(signal.SIGTERM, lambda *_: threading.Thread(target=server.shutdown).start())
notify("READY=1")
server.serve_forever()
server.server_close()
