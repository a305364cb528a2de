#!/usr/bin/python3
"""The lab's local mail sink: an SMTP server that delivers nowhere.

Every message the notification service sends is kept as one file under a
directory (`make run` uses .run/mail/), named <receive time>-<sequence>.eml,
with two headers of its own on top: X-Sink-Peer (the client's address and
port: one port for many messages means the connection was reused) and
X-Sink-Rcpt (the envelope recipients).

  scripts/mail-sink.py serve --dir .run/mail --port 1025   (make run starts it)
  scripts/mail-sink.py list  [--dir .run/mail]              newest last
  scripts/mail-sink.py show  [--dir .run/mail] N|FILE       one message (N: 1 = newest)

Built on aiosmtpd (Debian's python3-aiosmtpd), the maintained successor of
Python's smtpd.
"""
import argparse
import asyncio
import email
import email.policy
import os
import signal
import sys
import time

DEFAULT_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".run", "mail")


class Keeper:
    """aiosmtpd handler: writes each message whole, atomically (tmp + rename)."""

    def __init__(self, directory):
        self.directory = directory
        self.sequence = 0

    async def handle_DATA(self, server, session, envelope):
        self.sequence += 1
        name = "%d-%06d.eml" % (time.time_ns(), self.sequence)
        peer = session.peer if isinstance(session.peer, tuple) else (str(session.peer), 0)
        head = "X-Sink-Peer: %s:%s\r\nX-Sink-Rcpt: %s\r\n" % (peer[0], peer[1], ", ".join(envelope.rcpt_tos))
        tmp = os.path.join(self.directory, "." + name + ".tmp")
        with open(tmp, "wb") as f:
            f.write(head.encode() + envelope.original_content)
        os.rename(tmp, os.path.join(self.directory, name))
        return "250 Message accepted for delivery"


def serve(args):
    from aiosmtpd.smtp import SMTP

    os.makedirs(args.dir, exist_ok=True)
    keeper = Keeper(args.dir)
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)

    def factory():
        return SMTP(keeper, hostname="oms-mail-sink", enable_SMTPUTF8=True, decode_data=False)

    server = loop.run_until_complete(loop.create_server(factory, host=args.host, port=args.port, reuse_address=True))
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, loop.stop)
    print("mail sink listening on %s:%d, keeping messages in %s" % (args.host, args.port, args.dir), flush=True)
    try:
        loop.run_forever()
    finally:
        server.close()
        loop.run_until_complete(server.wait_closed())
        loop.close()
    return 0


def messages(directory):
    if not os.path.isdir(directory):
        return []
    return sorted(n for n in os.listdir(directory) if n.endswith(".eml") and not n.startswith("."))


def read(directory, name):
    with open(os.path.join(directory, name), "rb") as f:
        return email.message_from_binary_file(f, policy=email.policy.default)


def list_messages(args):
    names = messages(args.dir)
    for i, name in enumerate(names):
        m = read(args.dir, name)
        print("%4d  %s  %-30s  %s" % (len(names) - i, m.get("Date", "")[:25], m.get("To", "")[:30], m.get("Subject", "")))
    print("%d message(s) in %s" % (len(names), os.path.abspath(args.dir)))
    return 0


def show(args):
    names = messages(args.dir)
    name = args.which
    if name.isdigit():
        n = int(name)
        if not 1 <= n <= len(names):
            print("no message %d (there are %d)" % (n, len(names)), file=sys.stderr)
            return 1
        name = names[-n]
    m = read(args.dir, os.path.basename(name))
    for key in ("Date", "From", "To", "Subject", "Message-ID"):
        print("%s: %s" % (key, m.get(key, "")))
    print()
    print(m.get_content())
    return 0


def main():
    parser = argparse.ArgumentParser(description="The lab's local SMTP sink.")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("serve", help="receive mail")
    p.add_argument("--dir", default=DEFAULT_DIR)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=1025)
    p = sub.add_parser("list", help="list the messages kept")
    p.add_argument("--dir", default=DEFAULT_DIR)
    p = sub.add_parser("show", help="print one message")
    p.add_argument("--dir", default=DEFAULT_DIR)
    p.add_argument("which", help="N (1 = newest) or a file name")
    args = parser.parse_args()
    return {"serve": serve, "list": list_messages, "show": show}[args.command](args)


if __name__ == "__main__":
    sys.exit(main())
