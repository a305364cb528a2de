"""Where the notification service's messages land in the tests: the lab's
own mail sink (scripts/mail-sink.py, as `make run` starts it) on a port and
folder of the test's own, and a webhook receiver on a thread."""
import email
import email.policy
import http.server
import json
import os
import shutil
import subprocess
import threading

from oms_test import ROOT, STACK_DIR, free_port, port_open, wait_until


class MailSink:
    """scripts/mail-sink.py serve, as a child process; stop() and start()
    again keep the port and the folder (the SMTP server going away and
    coming back)."""

    def __init__(self, name="mail"):
        self.port = free_port()
        self.dir = os.path.join(STACK_DIR, f"{name}-{self.port}")
        shutil.rmtree(self.dir, ignore_errors=True)
        self.process = None

    @property
    def url(self):
        return f"smtp://127.0.0.1:{self.port}"

    def start(self):
        log = open(self.dir + ".log", "ab")
        self.process = subprocess.Popen(
            ["/usr/bin/python3", os.path.join(ROOT, "scripts", "mail-sink.py"), "serve", "--dir", self.dir,
             "--port", str(self.port)], stdout=log, stderr=subprocess.STDOUT)
        log.close()
        wait_until(lambda: port_open(self.port) or self.process.poll() is not None, 20, what="the mail sink")
        assert self.process.poll() is None, "the mail sink exited"
        return self

    def stop(self):
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=10)
        wait_until(lambda: not port_open(self.port), 10, what="the mail sink's port to close")

    def messages(self, to=None):
        """Every message kept, oldest first (email.message.EmailMessage,
        with X-Sink-Rcpt and X-Sink-Peer), or those for `to`."""
        if not os.path.isdir(self.dir):
            return []
        found = []
        for name in sorted(os.listdir(self.dir)):
            if name.endswith(".eml") and not name.startswith("."):
                with open(os.path.join(self.dir, name), "rb") as f:
                    m = email.message_from_binary_file(f, policy=email.policy.default)
                if to is None or m["X-Sink-Rcpt"] == to:
                    found.append(m)
        return found

    def wait_for(self, to, count=1, timeout=30):
        wait_until(lambda: len(self.messages(to)) >= count, timeout, interval=0.1,
                   what=f"{count} message(s) to {to}")
        return self.messages(to)


class WebhookSink:
    """An HTTP server on a thread that keeps every POSTed JSON body; while
    `failing`, it answers 500."""

    def __init__(self):
        self.bodies = []
        self.failing = False
        self.lock = threading.Lock()
        sink = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                length = int(self.headers.get("Content-Length", "0"))
                body = self.rfile.read(length)
                if sink.failing:
                    self.send_response(500)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                with sink.lock:
                    sink.bodies.append(json.loads(body))
                self.send_response(200)
                self.send_header("Content-Type", "text/plain")
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self):
        return f"http://127.0.0.1:{self.port}/hooks/oms"

    def texts(self):
        with self.lock:
            return [b.get("text", "") for b in self.bodies]

    def close(self):
        self.server.shutdown()
        self.server.server_close()
