#!/usr/bin/env python3
"""A small OAuth2 provider for tests: a token endpoint and an introspection
endpoint for Dovecot's oauth2 passdb.

    oauth_server.py --port PORT --introspect-port PORT --cert PEM --key PEM
                    --state FILE --client-id ID --client-secret SECRET
                    [--lifetime SECONDS] [--rotate] [--issued FILE]
                    [--grant USER]...

HTTPS on 127.0.0.1:--port (the stack's certificate):
  POST /token         RFC 6749 6, grant_type=refresh_token: an access token
                      living --lifetime seconds (default 5); with --rotate a
                      new refresh token too, and the old one stops working.
                      Errors as RFC 6749 5.2: invalid_client, invalid_grant
                      ("Token has been revoked", "Unknown refresh token").
  GET /admin/grant?user=U     a new refresh token for U (text)
  GET /admin/revoke?user=U    revokes every refresh token of U
  GET /admin/refuse?user=U&n=N  the next N introspections of U's access
                      tokens answer inactive (a token revoked early)
  GET /admin/stats    JSON: per user, access tokens issued, grants refused,
                      introspections answered active / inactive, and how many
                      inactive answers were for expired tokens
Plain HTTP on 127.0.0.1:--introspect-port:
  POST /introspect    token=T (RFC 7662): {"active": true, "username": U, ...}
                      while T lives, else {"active": false}

State (refresh tokens, stats) is kept in --state, so a restart keeps it.
Every token issued is appended to --issued (one a line), for tests that
check no log holds one.  --grant USER prints "grant USER TOKEN", a new
refresh token of USER, at start.  Prints "introspect on 127.0.0.1:PORT",
then "listening on 127.0.0.1:PORT" (the HTTPS port) once both listeners
are up (port 0: any free one).  Python 3 standard library only.
"""

import argparse
import json
import os
import secrets
import ssl
import sys
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

lock = threading.Lock()
args = None
state = {"refresh": {}, "stats": {}, "refuse": {}}
access = {}  # access token -> (user, expiry)


def save():
    tmp = args.state + ".tmp"
    with open(tmp, "w") as f:
        json.dump(state, f)
    os.replace(tmp, args.state)


def stat(user, key, n=1):
    s = state["stats"].setdefault(user, {})
    s[key] = s.get(key, 0) + n


def issued(token):
    if args.issued:
        with open(args.issued, "a") as f:
            f.write(token + "\n")


def new_refresh(user):
    token = "rt-" + secrets.token_urlsafe(24)
    state["refresh"][token] = {"user": user, "revoked": False}
    issued(token)
    return token


class Handler(BaseHTTPRequestHandler):
    def log_message(self, fmt, *a):  # no tokens in any log: paths only
        sys.stderr.write("%s %s\n" % (self.command, self.path.split("?")[0]))

    def reply(self, code, body, ctype="application/json"):
        data = (json.dumps(body) if ctype == "application/json" else body).encode()
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        self.wfile.write(data)

    def form(self):
        n = int(self.headers.get("Content-Length") or 0)
        return {k: v[0] for k, v in urllib.parse.parse_qs(self.rfile.read(n).decode()).items()}

    def do_GET(self):
        url = urllib.parse.urlparse(self.path)
        q = {k: v[0] for k, v in urllib.parse.parse_qs(url.query).items()}
        with lock:
            if url.path == "/admin/grant":
                token = new_refresh(q["user"])
                save()
                return self.reply(200, token + "\n", "text/plain")
            if url.path == "/admin/revoke":
                for t in state["refresh"].values():
                    if t["user"] == q["user"]:
                        t["revoked"] = True
                save()
                return self.reply(200, "revoked\n", "text/plain")
            if url.path == "/admin/refuse":
                state["refuse"][q["user"]] = int(q.get("n", "1"))
                save()
                return self.reply(200, "ok\n", "text/plain")
            if url.path == "/admin/stats":
                return self.reply(200, state["stats"])
        self.reply(404, {"error": "not_found"})

    def do_POST(self):
        url = urllib.parse.urlparse(self.path)
        f = self.form()
        with lock:
            if url.path == "/token":
                return self.token(f)
            if url.path == "/introspect":
                return self.introspect(f)
        self.reply(404, {"error": "not_found"})

    def token(self, f):
        if f.get("client_id") != args.client_id or f.get("client_secret") != args.client_secret:
            return self.reply(401, {"error": "invalid_client",
                                    "error_description": "Unknown client or wrong secret"})
        if f.get("grant_type") != "refresh_token":
            return self.reply(400, {"error": "unsupported_grant_type"})
        rt = state["refresh"].get(f.get("refresh_token", ""))
        if rt is None:
            return self.reply(400, {"error": "invalid_grant",
                                    "error_description": "Unknown refresh token"})
        if rt["revoked"]:
            stat(rt["user"], "refused")
            save()
            return self.reply(400, {"error": "invalid_grant",
                                    "error_description": "Token has been revoked"})
        at = "at-" + secrets.token_urlsafe(24)
        access[at] = (rt["user"], time.time() + args.lifetime)
        issued(at)
        stat(rt["user"], "issued")
        body = {"access_token": at, "token_type": "Bearer", "expires_in": args.lifetime}
        if args.rotate:
            rt["revoked"] = True  # strict rotation: the old one is spent
            body["refresh_token"] = new_refresh(rt["user"])
        save()
        self.reply(200, body)

    def introspect(self, f):
        entry = access.get(f.get("token", ""))
        if entry is None:
            return self.reply(200, {"active": False})
        user, expiry = entry
        if state["refuse"].get(user, 0) > 0:
            state["refuse"][user] -= 1
            stat(user, "inactive")
            save()
            return self.reply(200, {"active": False})
        if time.time() >= expiry:
            stat(user, "inactive")
            stat(user, "expired")
            save()
            return self.reply(200, {"active": False})
        stat(user, "active")
        save()
        self.reply(200, {"active": True, "username": user, "exp": int(expiry),
                         "scope": "mail"})


def main():
    global args
    p = argparse.ArgumentParser()
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--introspect-port", type=int, required=True)
    p.add_argument("--cert", required=True)
    p.add_argument("--key", required=True)
    p.add_argument("--state", required=True)
    p.add_argument("--client-id", required=True)
    p.add_argument("--client-secret", required=True)
    p.add_argument("--lifetime", type=int, default=5)
    p.add_argument("--rotate", action="store_true")
    p.add_argument("--issued", default=None)
    p.add_argument("--grant", action="append", default=[])
    args = p.parse_args()
    if os.path.exists(args.state):
        with open(args.state) as f:
            state.update(json.load(f))
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(args.cert, args.key)
    tls = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    tls.socket = ctx.wrap_socket(tls.socket, server_side=True)
    plain = ThreadingHTTPServer(("127.0.0.1", args.introspect_port), Handler)
    threading.Thread(target=plain.serve_forever, daemon=True).start()
    for user in args.grant:
        print("grant %s %s" % (user, new_refresh(user)))
    save()
    print("introspect on 127.0.0.1:%d" % plain.server_address[1])
    print("listening on 127.0.0.1:%d" % tls.server_address[1], flush=True)
    tls.serve_forever()


if __name__ == "__main__":
    main()
