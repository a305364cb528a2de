#!/usr/bin/python3
"""Prints a service token: what a service mints for itself to call another
service's internal endpoints (inventory's reservations), for scripts, the
benchmarks and a learner's curl.

    scripts/service-token.py [service] [lifetime-seconds]
    curl -X POST localhost:8002/api/inventory/reservations \\
         -H "Authorization: Bearer $(scripts/service-token.py order)" ...

The token is the services' own kind (services/common/auth.h): an HS256 JWT
with role "service", the calling service's name as sub (default: order), a
random jti, issued now and valid for 300 seconds unless told otherwise. It
is signed with JWT_SECRET from the environment, else from .env, else the
lab's published default, as the services read it.
"""
import base64
import hashlib
import hmac
import json
import os
import re
import sys
import time
import uuid

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
LAB_JWT_SECRET = "lab-jwt-secret-change-me-0123456789abcdef"  # services/common/server.c
LIFETIME_SECONDS = 300  # AUTH_SERVICE_TOKEN_LIFETIME_S
TOKEN_ID = re.compile(r"^[A-Za-z0-9_-]{1,63}$")  # what a token's sub may be


def jwt_secret():
    """JWT_SECRET as scripts/lib/dotenv.sh reads it: the environment first,
    then a KEY=value line of .env taken literally."""
    if os.environ.get("JWT_SECRET"):
        return os.environ["JWT_SECRET"]
    try:
        with open(os.path.join(ROOT, ".env")) as f:
            for line in f:
                key, _, value = line.rstrip("\n").partition("=")
                if key == "JWT_SECRET" and value:
                    return value
    except FileNotFoundError:
        pass
    return LAB_JWT_SECRET


def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def service_token(service, lifetime, secret):
    now = int(time.time())
    header = {"alg": "HS256", "typ": "JWT"}
    claims = {"sub": service, "role": "service", "iat": now, "exp": now + lifetime, "jti": uuid.uuid4().hex}
    signing_input = b64url(json.dumps(header).encode()) + "." + b64url(json.dumps(claims).encode())
    signature = hmac.new(secret.encode(), signing_input.encode(), hashlib.sha256).digest()
    return signing_input + "." + b64url(signature)


def main(args):
    if len(args) > 2 or (args and args[0] in ("-h", "--help")):
        print(__doc__.strip(), file=sys.stderr)
        return 2
    service = args[0] if args else "order"
    if not TOKEN_ID.match(service):
        print(f"service-token: '{service}' is not a token id (1-63 of A-Z a-z 0-9 _ -)", file=sys.stderr)
        return 2
    try:
        lifetime = int(args[1]) if len(args) > 1 else LIFETIME_SECONDS
    except ValueError:
        lifetime = 0
    if lifetime <= 0:
        print("service-token: the lifetime is a whole number of seconds above 0", file=sys.stderr)
        return 2
    print(service_token(service, lifetime, jwt_secret()))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
