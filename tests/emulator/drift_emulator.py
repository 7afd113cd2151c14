#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""A local Drift REST API emulator for driftfs tests, benchmarks and demos.

It serves the endpoints of shared/drift-api.md with their real, deliberately
non-uniform envelopes, from a seeded dataset (drift_data.py), and injects the
faults a robust client must survive: latency, leaky-bucket 429s, random 5xx,
stalls, connection resets, truncated and malformed bodies. An unauthenticated
/_admin interface shows the data, the request log and per-endpoint counters,
changes fault settings and mutates data "as if in the Drift UI".

Layout of this file: HTTP plumbing (Reply, Request), routing (Router),
faults (Faults), request accounting (RequestLog), auth (Auth), the API
endpoints (Api), the admin interface (Admin), the connection handler
(Handler) and the command line (main). Python standard library only.
"""

import argparse
import base64
import binascii
import collections
import hashlib
import io
import json
import math
import os
import random
import re
import secrets
import signal
import socket
import ssl
import struct
import sys
import threading
import time
import traceback
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from drift_data import (ORG_ID, STATUS_IDS, STATUSES, ApiError,  # noqa: E402
                        Store, invalid, not_found, parse_id)

MAX_BODY = 16 * 1024 * 1024          # larger request bodies get 413
LOG_BODY_MAX = 64 * 1024             # request bodies kept in the log
LOG_MAX = 200000                     # request log entries kept
MESSAGES_PAGE = 50                   # fixed by the real API
ERROR_TYPES = {400: "validation_error", 401: "authentication_error",
               403: "forbidden", 404: "not_found", 405: "method_not_allowed",
               409: "conflict", 413: "validation_error",
               429: "rate_limit_exceeded"}
AUTH_MESSAGE = "The access token is invalid or has expired"
SCOPES = ("contact_read contact_write all_contact_read conversation_read "
          "conversation_write user_read user_write account_read account_write "
          "playbook_read gdpr_read gdpr_write")


# ----------------------------------------------------------------------
# HTTP plumbing
# ----------------------------------------------------------------------

def json_bytes(obj):
    """Compact UTF-8 JSON; Python ints keep 64-bit ids exact."""
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


class Reply:
    """A complete HTTP response, built before anything is written.

    ``after`` runs once the reply is on the wire (used by admin shutdown).
    """

    def __init__(self, status, body=b"", ctype="application/json; charset=utf-8",
                 headers=None, after=None):
        self.status = status
        self.body = body
        self.ctype = ctype
        self.headers = list((headers or {}).items())
        self.after = after


def json_reply(obj, status=200, headers=None, after=None):
    """Reply with a JSON body."""
    return Reply(status, json_bytes(obj), headers=headers, after=after)


def error_reply(status, etype=None, message=None, headers=None):
    """Reply with Drift's error shape {"error": {"type", "message"}}."""
    etype = etype or ERROR_TYPES.get(status, "server_error")
    message = message or f"HTTP {status}"
    return json_reply({"error": {"type": etype, "message": message}}, status, headers)


def normalize_path(raw):
    """Strip the optional /v1 prefix and a trailing slash."""
    path = raw or "/"
    if path == "/v1" or path.startswith("/v1/"):
        path = path[3:] or "/"
    if len(path) > 1 and path.endswith("/"):
        path = path.rstrip("/") or "/"
    return path


class Request:
    """One parsed API or admin request as the endpoint functions see it."""

    def __init__(self, method, raw_path, query, body, headers, base_url):
        self.method = method
        self.raw_path = raw_path
        self.path = normalize_path(raw_path)
        self.query_string = query
        self.query = urllib.parse.parse_qs(query, keep_blank_values=True)
        self.body = body
        self.headers = headers
        self.base_url = base_url
        self.params = {}

    def arg(self, name, default=None):
        """First value of a query parameter."""
        values = self.query.get(name)
        return values[0] if values else default

    def args(self, name):
        """Every value of a repeatable query parameter."""
        return self.query.get(name, [])

    def int_arg(self, name, default, minimum=0):
        """An integer query parameter; garbage is a 400."""
        value = self.arg(name)
        if value is None or value == "":
            return default
        try:
            number = int(value)
        except ValueError:
            raise invalid(f"{name} must be an integer")
        if number < minimum:
            raise invalid(f"{name} must be >= {minimum}")
        return number

    def json(self, required=True):
        """The body parsed as JSON, or a 400 validation_error."""
        if not self.body.strip():
            if required:
                raise invalid("a JSON body is required")
            return None
        try:
            return json.loads(self.body.decode("utf-8"))
        except (UnicodeDecodeError, ValueError) as err:
            raise invalid(f"malformed JSON body: {err}")


# ----------------------------------------------------------------------
# Routing
# ----------------------------------------------------------------------

class Router:
    """Maps (method, path) to an endpoint function.

    Templates use ``{id}`` for a numeric id, ``{key}`` for a string id and
    ``{name}`` for any other segment; captures are percent-decoded after
    splitting, so %2F stays inside a tag name. The template (with ``{key}``
    shown as ``{id}``) doubles as the endpoint key of the statistics.
    """

    def __init__(self):
        self.routes = []

    def add(self, method, template, func, public=False):
        """Register an endpoint; ``public`` ones need no bearer token."""
        pattern = re.escape(template)
        pattern = (pattern.replace(r"\{id\}", r"(\d+)")
                   .replace(r"\{key\}", r"([^/]+)").replace(r"\{name\}", r"([^/]+)"))
        self.routes.append((method, template, re.compile(pattern + r"\Z"), func, public))

    def match(self, method, path):
        """(template, func, public, params) or (None, status, None, None)."""
        wrong_method = False
        for r_method, template, regex, func, public in self.routes:
            m = regex.match(path)
            if not m:
                continue
            if r_method != method:
                wrong_method = True
                continue
            return template, func, public, [urllib.parse.unquote(g) for g in m.groups()]
        return None, (405 if wrong_method else 404), None, None

    @staticmethod
    def endpoint_key(method, template, path):
        """Statistics key: the template, or the path with ids -> {id}."""
        if template is None:
            template = re.sub(r"/\d+(?=/|\Z)", "/{id}", path)
        return f"{method} {template.replace('{key}', '{id}')}"


# ----------------------------------------------------------------------
# Faults
# ----------------------------------------------------------------------

class LeakyBucket:
    """A leaky bucket: ``rate`` units drain per second, ``burst`` fit."""

    def __init__(self, rate, burst):
        self.rate = float(rate)
        self.burst = float(burst)
        self.level = 0.0
        self.last = time.monotonic()

    def take(self):
        """Add one request; None if it fits, else whole seconds to wait."""
        if self.rate <= 0:
            return None
        now = time.monotonic()
        self.level = max(0.0, self.level - (now - self.last) * self.rate)
        self.last = now
        if self.level + 1 > self.burst:
            return max(1, math.ceil((self.level + 1 - self.burst) / self.rate))
        self.level += 1
        return None


FAULT_KINDS = ("status", "stall", "reset", "reset_mid_body", "truncate",
               "malformed", "body", "echo", "burst429", "redirect", "huge", "repeat_cursor",
               "rewind", "throttle")


def echo_body(template, req):
    """An echo fault's body: {body} becomes the request body as it came (a
    form stays percent-encoded), {form:NAME} the decoded form field NAME
    (empty when absent), as an error page that quotes the request does."""
    raw = req.body.decode("utf-8", "replace")
    form = {k: v[0] for k, v in urllib.parse.parse_qs(raw, keep_blank_values=True).items()}
    out = re.sub(r"\{form:([A-Za-z0-9_]+)\}", lambda m: form.get(m.group(1), ""), template)
    return out.replace("{body}", raw)


def repeat_cursor(req, reply):
    """The reply with its paging cursor pointing back at the page just served
    (legacy and message "pagination.next", token "links.next", account
    "data.next"), as if the API had a bug: a client that follows it pages
    forever."""
    try:
        obj = json.loads(reply.body)
    except ValueError:
        return reply
    if reply.status != 200 or not isinstance(obj, dict):
        return reply
    if isinstance(obj.get("links"), dict) and "self" in obj["links"]:
        obj["links"]["next"] = obj["links"]["self"]
    elif isinstance(obj.get("data"), dict) and "accounts" in obj["data"]:
        obj["data"]["next"] = req.path + ("?" + req.query_string
                                          if req.query_string else "")
    else:
        obj["pagination"] = {"more": True, "next": req.arg("next") or "0"}
    return Reply(reply.status, json_bytes(obj), reply.ctype,
                 dict(reply.headers))


def rewind(req, by):
    """The request with its paging offset moved back by `by` items (legacy
    and message "next", or the offset inside a page_token): the page then
    repeats items of the page before, as when items are added at the top
    during a walk."""
    query = {k: list(v) for k, v in req.query.items()}
    if req.arg("page_token"):
        offset, limit, statuses = decode_page_token(req.arg("page_token"))
        query["page_token"] = [encode_page_token(max(0, offset - by), limit,
                                                 statuses)]
    elif (req.arg("next") or "").isdigit():
        query["next"] = [str(max(0, int(req.arg("next")) - by))]
    out = Request(req.method, req.raw_path,
                  urllib.parse.urlencode(query, doseq=True), req.body,
                  req.headers, req.base_url)
    out.params = req.params
    return out


class Faults:
    """Fault settings and counted faults, shared by all handler threads.

    Standing settings (latency, rate limit, random failures) come from the
    command line and /_admin/faults; counted faults from /_admin/faults/add
    are used up in order, by the requests that match them.
    """

    def __init__(self, args):
        self.lock = threading.Lock()
        self.latency_ms = args.latency
        self.retry_after = args.retry_after
        self.fail_rate = args.fail_rate
        self.fail_status = args.fail_status
        self.report_limit = args.report_limit
        self.bucket = LeakyBucket(args.rate, args.burst or max(1, args.rate))
        self.report_bucket = LeakyBucket(self.report_limit / 60.0, self.report_limit)
        self.rng = random.Random(f"faults:{args.seed}")
        self.counted = []
        self._next_id = 1

    def settings(self):
        """Current settings and pending counted faults."""
        with self.lock:
            return {"latency_ms": self.latency_ms, "rate": self.bucket.rate,
                    "burst": self.bucket.burst, "retry_after": self.retry_after,
                    "fail_rate": self.fail_rate, "fail_status": self.fail_status,
                    "report_limit": self.report_limit,
                    "pending": [{k: v for k, v in f.items() if k != "regex"}
                                for f in self.counted]}

    def configure(self, cfg):
        """Apply any subset of the standing settings (validated first)."""
        if not isinstance(cfg, dict):
            raise invalid("settings must be an object")
        numeric = ("latency_ms", "rate", "burst", "fail_rate", "fail_status",
                   "report_limit")
        for key, value in cfg.items():
            if key == "retry_after":
                if not isinstance(value, bool):
                    raise invalid("retry_after must be true or false")
            elif key not in numeric:
                raise invalid(f"unknown setting {key}")
            elif isinstance(value, bool) or not isinstance(value, (int, float)) \
                    or value < 0:
                raise invalid(f"{key} must be a non-negative number")
        if "fail_rate" in cfg and cfg["fail_rate"] > 1:
            raise invalid("fail_rate is a fraction 0..1")
        if "fail_status" in cfg and not 100 <= cfg["fail_status"] <= 599:
            raise invalid("fail_status must be an HTTP status")
        with self.lock:
            self.latency_ms = cfg.get("latency_ms", self.latency_ms)
            self.retry_after = cfg.get("retry_after", self.retry_after)
            self.fail_rate = cfg.get("fail_rate", self.fail_rate)
            self.fail_status = int(cfg.get("fail_status", self.fail_status))
            if "rate" in cfg or "burst" in cfg:
                rate = cfg.get("rate", self.bucket.rate)
                burst = cfg.get("burst", self.bucket.burst if "rate" not in cfg
                                else max(1, rate))
                self.bucket = LeakyBucket(rate, burst)
            if "report_limit" in cfg:
                self.report_limit = cfg["report_limit"]
                self.report_bucket = LeakyBucket(self.report_limit / 60.0,
                                                 self.report_limit)

    def add(self, fault):
        """Queue a counted fault after validating it; returns its id."""
        if not isinstance(fault, dict) or fault.get("kind") not in FAULT_KINDS:
            raise invalid(f"fault kind must be one of {', '.join(FAULT_KINDS)}")
        fault = dict(fault)
        count = fault.setdefault("count", 1)
        if isinstance(count, bool) or not isinstance(count, int) or count < 1:
            raise invalid("count must be a positive integer")
        skip = fault.setdefault("skip", 0)
        if isinstance(skip, bool) or not isinstance(skip, int) or skip < 0:
            raise invalid("skip must be a non-negative integer")
        if fault.get("path") is not None:
            try:
                fault["regex"] = re.compile(fault["path"])
            except (re.error, TypeError) as err:
                raise invalid(f"bad path regex: {err}")
        if fault.get("method") is not None:
            fault["method"] = str(fault["method"]).upper()
        kind = fault["kind"]
        if kind == "status":
            st = fault.setdefault("status", 503)
            if isinstance(st, bool) or not isinstance(st, int) or not 100 <= st <= 599:
                raise invalid("status must be an HTTP status")
            pa = fault.get("process_after")
            if pa is not None and (isinstance(pa, bool) or
                                   not isinstance(pa, (int, float)) or pa < 0):
                raise invalid("process_after must be a non-negative number")
        if kind == "stall":
            secs = fault.setdefault("seconds", 30)
            if isinstance(secs, bool) or not isinstance(secs, (int, float)) or secs < 0:
                raise invalid("seconds must be a non-negative number")
        if kind in ("body", "echo"):
            if not isinstance(fault.get("body"), str):
                raise invalid(f"{kind} fault needs a string body")
            fault.setdefault("status", 200 if kind == "body" else 400)
        if kind == "burst429":
            fault.setdefault("retry_after", 1)
        if kind == "redirect":
            st = fault.setdefault("status", 302)
            if isinstance(st, bool) or not isinstance(st, int) or not 300 <= st <= 399:
                raise invalid("a redirect's status must be 3xx")
            if not isinstance(fault.get("location"), str) or not fault["location"]:
                raise invalid("redirect fault needs a location")
        if kind == "huge":
            size = fault.setdefault("bytes", 64 << 20)
            if isinstance(size, bool) or not isinstance(size, int) or \
                    not 16 <= size <= 1 << 30:
                raise invalid("bytes must be an integer 16..2^30")
        if kind == "throttle":
            bps = fault.get("bytes_per_second")
            if isinstance(bps, bool) or not isinstance(bps, (int, float)) \
                    or bps <= 0:
                raise invalid("bytes_per_second must be a positive number")
            at = fault.setdefault("stall_after", None)
            if at is not None and (isinstance(at, bool) or
                                   not isinstance(at, int) or at < 0):
                raise invalid("stall_after must be a non-negative integer")
            secs = fault.setdefault("seconds", 0)
            if isinstance(secs, bool) or not isinstance(secs, (int, float)) \
                    or secs < 0:
                raise invalid("seconds must be a non-negative number")
        if kind == "rewind":
            by = fault.setdefault("by", 10)
            if isinstance(by, bool) or not isinstance(by, int) or by < 1:
                raise invalid("by must be a positive integer")
        ra = fault.get("retry_after")
        if ra is not None and (isinstance(ra, bool) or not isinstance(ra, (int, float))):
            raise invalid("retry_after must be a number or null")
        with self.lock:
            fault["id"] = self._next_id
            self._next_id += 1
            self.counted.append(fault)
        return fault["id"]

    def clear(self):
        """Drop every pending counted fault."""
        with self.lock:
            self.counted = []

    def take(self, method, path):
        """The first pending fault matching this request, used up by one."""
        with self.lock:
            for fault in self.counted:
                if fault.get("method") and fault["method"] != method:
                    continue
                if fault.get("regex") and not fault["regex"].search(path):
                    continue
                if fault["skip"] > 0:
                    fault["skip"] -= 1
                    continue
                fault["count"] -= 1
                if fault["count"] <= 0:
                    self.counted.remove(fault)
                return dict(fault)
        return None

    def latency(self):
        """Seconds to sleep before answering an API request."""
        with self.lock:
            return self.latency_ms / 1000.0

    def rate_limited(self):
        """None, or (retry_after seconds or None when the header is off)."""
        with self.lock:
            wait = self.bucket.take()
            if wait is None:
                return None
            return wait if self.retry_after else False

    def report_limited(self):
        """Like rate_limited, for the reports endpoint's 60/min bucket."""
        with self.lock:
            wait = self.report_bucket.take()
            if wait is None:
                return None
            return wait if self.retry_after else False

    def random_failure(self):
        """The injected status for this request, or None."""
        with self.lock:
            if self.fail_rate > 0 and self.rng.random() < self.fail_rate:
                return self.fail_status
        return None


def rate_limit_reply(retry_after, message="API rate limit exceeded"):
    """A 429 with Retry-After when ``retry_after`` is a number."""
    headers = {}
    if retry_after is not None and retry_after is not False:
        headers["Retry-After"] = str(max(1, math.ceil(retry_after)))
    return error_reply(429, "rate_limit_exceeded", message, headers)


# ----------------------------------------------------------------------
# Request accounting
# ----------------------------------------------------------------------

class RequestLog:
    """The log of API requests and per-endpoint/per-status counters."""

    def __init__(self):
        self.lock = threading.Lock()
        self.arrivals = 0           # never reset: see arrive()
        self.reset()

    def reset(self):
        """Forget every request (sequence numbers restart at 1)."""
        with self.lock:
            self.entries = collections.deque(maxlen=LOG_MAX)
            self.seq = 0
            self.total = 0
            self.by_endpoint = collections.Counter()
            self.by_status = collections.Counter()

    def arrive(self):
        """A number for a request as it arrives, in arrival order, and the
        time it came (the "arrived" and "arrived_time" of its entry): a
        faulted reply (throttled, stalled) is logged when its thread is
        done, after a request that came later, and a reply can be logged
        after a kill -9 of the client that sent the request; the order and
        time they came is what a check of writes needs."""
        with self.lock:
            self.arrivals += 1
            return (self.arrivals, round(time.time(), 3))

    def record(self, req, endpoint, status, fault, arrived=None):
        """Append one finished request (arrived: what arrive() gave)."""
        arrived_time = None
        if isinstance(arrived, tuple):
            arrived, arrived_time = arrived
        body = None
        if req.body:
            body = req.body[:LOG_BODY_MAX].decode("utf-8", "replace")
        with self.lock:
            self.seq += 1
            self.total += 1
            self.by_endpoint[endpoint] += 1
            self.by_status[str(status)] += 1
            self.entries.append({"seq": self.seq, "method": req.method,
                                 "path": req.raw_path, "query": req.query_string,
                                 "endpoint": endpoint, "status": status,
                                 "fault": fault, "body": body,
                                 "arrived": arrived,
                                 "arrived_time": arrived_time,
                                 "time": round(time.time(), 3)})

    def requests(self, since=0):
        """Entries with seq > since."""
        with self.lock:
            return [e for e in self.entries if e["seq"] > since]

    def stats(self):
        """Totals by endpoint and by status."""
        with self.lock:
            return {"total": self.total, "by_endpoint": dict(self.by_endpoint),
                    "by_status": dict(self.by_status)}


# ----------------------------------------------------------------------
# Auth
# ----------------------------------------------------------------------

class Auth:
    """Install token (never expires) plus OAuth-issued tokens with a TTL.

    Refresh tokens rotate: using one invalidates it, as Kong-style OAuth
    servers do, so a client must persist the new one. Every token belongs to
    one org: the main one (ORG_ID), or another org's install token (--org).
    """

    def __init__(self, install_token, ttl):
        self.lock = threading.Lock()
        self.ttl = ttl
        self.install_token = install_token
        self.tokens = {install_token: {"expires": None, "created": 1700000000000,
                                       "org": ORG_ID}}
        self.refresh = set()

    def add_install(self, token, org):
        """Another org's install token (never expires)."""
        with self.lock:
            self.tokens[token] = {"expires": None, "created": 1700000000000,
                                  "org": org}

    def org_of(self, token):
        """The org a valid token belongs to."""
        with self.lock:
            return self.tokens[token]["org"]

    def check(self, header):
        """The token from an Authorization header if valid, else None."""
        if not header:
            return None
        scheme, _, token = header.strip().partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            return None
        with self.lock:
            info = self.tokens.get(token)
            if info is None:
                return None
            if info["expires"] is not None and time.time() >= info["expires"]:
                return None
        return token

    def issue(self):
        """A fresh access/refresh token pair."""
        access = "at-" + secrets.token_hex(16)
        refresh = "rt-" + secrets.token_hex(16)
        with self.lock:
            self.tokens[access] = {"expires": time.time() + self.ttl,
                                   "created": int(time.time() * 1000),
                                   "org": ORG_ID}
            self.refresh.add(refresh)
        return access, refresh

    def use_refresh(self, token):
        """Consume a refresh token; False if unknown or already used."""
        with self.lock:
            if token in self.refresh:
                self.refresh.discard(token)
                return True
        return False

    def info(self, token):
        """token_info fields for a token, or None if unknown/expired."""
        with self.lock:
            info = self.tokens.get(token)
            if info is None:
                return None
            left = 0
            if info["expires"] is not None:
                left = int(info["expires"] - time.time())
                if left <= 0:
                    return None
            return {"created": info["created"], "expires_in": left,
                    "org": info["org"]}

    def expire_all(self):
        """Expire every OAuth access token (the install token stays)."""
        with self.lock:
            for token, info in self.tokens.items():
                if info["expires"] is not None:
                    info["expires"] = 0
            return sum(1 for i in self.tokens.values() if i["expires"] == 0)


# ----------------------------------------------------------------------
# API endpoints
# ----------------------------------------------------------------------

def encode_page_token(offset, limit, statuses):
    """Opaque page_token: base64url JSON carrying offset, limit, filter."""
    raw = json_bytes({"o": offset, "l": limit, "s": statuses})
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def decode_page_token(token):
    """Inverse of encode_page_token; anything else is a 400."""
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        data = json.loads(raw)
        offset, limit, statuses = data["o"], data["l"], data["s"]
        if not (isinstance(offset, int) and offset >= 0 and isinstance(limit, int)
                and 1 <= limit <= 100 and isinstance(statuses, list)
                and all(s in STATUS_IDS for s in statuses)):
            raise ValueError("bad fields")
        return offset, limit, statuses
    except (ValueError, KeyError, TypeError, binascii.Error):
        raise invalid("invalid page_token")


class Api:
    """The Drift endpoints. Each takes a Request, returns a Reply.

    They run with the store lock held (see Emulator.execute), so they read
    and change the store freely and serialize before the lock is dropped.
    """

    def __init__(self, store, auth, faults, paging):
        self.store = store
        self.auth = auth
        self.faults = faults
        self.paging = paging
        self.router = Router()
        r = self.router
        r.add("POST", "/oauth2/token", self.oauth_token, public=True)
        r.add("POST", "/app/token_info", self.token_info)
        r.add("POST", "/contacts", self.contact_create)
        r.add("GET", "/contacts", self.contact_lookup)
        r.add("PATCH", "/contacts/normalize", self.contact_normalize)
        r.add("GET", "/contacts/attributes", self.contact_attributes)
        r.add("POST", "/contacts/timeline", self.contact_timeline)
        r.add("GET", "/contacts/{id}", self.contact_get)
        r.add("PATCH", "/contacts/{id}", self.contact_patch)
        r.add("DELETE", "/contacts/{id}", self.contact_delete)
        r.add("POST", "/contacts/{id}/tags", self.tags_add)
        r.add("DELETE", "/contacts/{id}/tags/{name}", self.tag_delete)
        r.add("POST", "/contacts/{id}/tags/delete/_bulk", self.tags_delete_bulk)
        r.add("POST", "/emails/unsubscribe", self.unsubscribe)
        r.add("GET", "/users/list", self.users_list)
        r.add("GET", "/users", self.users_multi)
        r.add("PATCH", "/users/update", self.user_update)
        r.add("GET", "/users/{id}", self.user_get)
        r.add("GET", "/conversations/list", self.conversations_list)
        r.add("GET", "/conversations/stats", self.conversations_stats)
        r.add("POST", "/conversations/new", self.conversation_new)
        r.add("GET", "/conversations/{id}", self.conversation_get)
        r.add("GET", "/conversations/{id}/messages", self.messages_list)
        r.add("POST", "/conversations/{id}/messages", self.message_create)
        r.add("GET", "/conversations/{id}/transcript", self.transcript)
        r.add("GET", "/attachments/{id}/data", self.attachment_data)
        r.add("POST", "/reports/conversations", self.report)
        r.add("POST", "/accounts/create", self.account_create)
        r.add("PATCH", "/accounts/update", self.account_update)
        r.add("GET", "/accounts", self.accounts_list)
        r.add("GET", "/accounts/{key}", self.account_get)
        r.add("DELETE", "/accounts/{key}", self.account_delete)
        r.add("GET", "/playbooks/list", self.playbooks)
        r.add("GET", "/playbooks/clp", self.clps)
        r.add("POST", "/gdpr/delete", self.gdpr_delete)

    OK = {"result": "OK", "ok": True}

    # --- auth -----------------------------------------------------------

    def oauth_token(self, req):
        """X1: authorization_code (code "valid-code") and refresh_token."""
        ctype = (req.headers.get("Content-Type") or "").lower()
        camel = False
        if "json" in ctype or req.body.lstrip().startswith(b"{"):
            body = req.json()
            if not isinstance(body, dict):
                raise invalid("body must be an object")
            camel = any(k in body for k in ("grantType", "clientId", "refreshToken"))
        else:
            body = {k: v[0] for k, v in urllib.parse.parse_qs(
                req.body.decode("utf-8", "replace"), keep_blank_values=True).items()}
        for k, v in req.query.items():          # some clients use the query
            body.setdefault(k, v[0])

        def field(snake, camel_name):
            value = body.get(snake, body.get(camel_name))
            return value if isinstance(value, str) else None

        grant = field("grant_type", "grantType")
        if not field("client_id", "clientId") or not field("client_secret", "clientSecret"):
            raise ApiError(400, "invalid_request", "client_id and client_secret are required")
        if grant == "authorization_code":
            if field("code", "code") != "valid-code":
                raise ApiError(400, "invalid_grant", "invalid authorization code")
        elif grant == "refresh_token":
            if not self.auth.use_refresh(field("refresh_token", "refreshToken") or ""):
                raise ApiError(400, "invalid_grant", "invalid refresh token")
        else:
            raise ApiError(400, "unsupported_grant_type",
                           "grant_type must be authorization_code or refresh_token")
        access, refresh = self.auth.issue()
        out = {"access_token": access, "refresh_token": refresh,
               "token_type": "bearer", "expires_in": self.auth.ttl, "orgId": ORG_ID}
        if camel:
            out.update({"accessToken": access, "refreshToken": refresh,
                        "tokenType": "bearer", "expiresIn": self.auth.ttl})
        return json_reply(out)

    def token_info(self, req):
        """X2: metadata of the token named in the body (bare object)."""
        body = req.json()
        token = None
        if isinstance(body, dict):
            token = body.get("access_token", body.get("accessToken"))
        info = self.auth.info(token) if isinstance(token, str) else None
        if info is None:
            raise invalid("unknown access_token")
        return json_reply({"access_token": token,
                           "authenticated_userid": f"orgId:{info['org']}",
                           "credential_id": "driftfs-emulator-app",
                           "token_type": "bearer", "expires_in": info["expires_in"],
                           "created_at": info["created"], "scope": SCOPES,
                           "id": hashlib.sha1(token.encode()).hexdigest()[:8]})

    # --- contacts -------------------------------------------------------

    def _attributes_body(self, req):
        """The {"attributes": {...}} body of contact writes."""
        body = req.json()
        if not isinstance(body, dict) or not isinstance(body.get("attributes"), dict):
            raise invalid('body must be {"attributes": {...}}')
        return body["attributes"]

    def contact_create(self, req):
        """C1."""
        return json_reply({"data": self.store.create_contact(self._attributes_body(req))})

    def contact_lookup(self, req):
        """C3 by email, C4 by externalId; listing everything is refused."""
        limit = req.int_arg("limit", None, minimum=1)
        email = req.arg("email")
        id_type = req.arg("idType")
        if id_type is not None:
            if id_type != "external":
                raise invalid("idType must be external")
            ids = req.args("id")
            if not ids:
                raise invalid("id is required with idType=external")
            found = self.store.contacts_by_external(ids)
            if email is not None:
                found = [c for c in found
                         if str(c["attributes"].get("email", "")).lower() == email.lower()]
        elif email is not None:
            found = self.store.contacts_by_email(email)
        else:
            raise invalid("email or idType=external&id= is required; "
                          "contacts cannot be listed")
        if limit is not None:
            found = found[:limit]
        return json_reply({"data": found})

    def contact_normalize(self, req):
        """C6: PATCH by externalId."""
        if req.arg("idType") != "external" or not req.arg("id"):
            raise invalid("idType=external and id are required")
        found = self.store.contacts_by_external([req.arg("id")])
        if not found:
            raise not_found(f"contact with externalId {req.arg('id')}")
        attrs = self._attributes_body(req)
        return json_reply({"data": self.store.update_contact(found[0]["id"], attrs)})

    def contact_attributes(self, req):
        """C10."""
        return json_reply({"data": {"properties": self.store.attributes}})

    def contact_timeline(self, req):
        """C9: echo the stored event in data."""
        return json_reply({"data": self.store.timeline_event(req.json())})

    def contact_get(self, req):
        """C2."""
        return json_reply({"data": self.store.contact(req.params[0])})

    def contact_patch(self, req):
        """C5: merge attributes."""
        self.store.contact(req.params[0])
        attrs = self._attributes_body(req)
        return json_reply({"data": self.store.update_contact(req.params[0], attrs)})

    def contact_delete(self, req):
        """C7."""
        self.store.delete_contact(req.params[0])
        return json_reply(self.OK)

    def tags_add(self, req):
        """C11: add tags; replies with the updated contact."""
        self.store.contact(req.params[0])
        return json_reply({"data": self.store.add_tags(req.params[0], req.json())})

    def tag_delete(self, req):
        """C11: delete one tag named by the (percent-decoded) segment."""
        self.store.remove_tags(req.params[0], [req.params[1]])
        return json_reply(self.OK)

    def tags_delete_bulk(self, req):
        """C11: delete the tags named in the body array."""
        self.store.contact(req.params[0])
        self.store.remove_tags(req.params[0], req.json())
        return json_reply(self.OK)

    def unsubscribe(self, req):
        """C8: body is a bare array of emails."""
        self.store.unsubscribe(req.json())
        return json_reply(self.OK)

    # --- users ----------------------------------------------------------

    def users_list(self, req):
        """U1: everyone, bots included, no paging."""
        return json_reply({"data": list(self.store.users.values())})

    def user_get(self, req):
        """U2."""
        return json_reply({"data": self.store.user(req.params[0])})

    def users_multi(self, req):
        """U3: map keyed by id string, at most 20 ids."""
        ids = req.args("userId")
        if not ids:
            raise invalid("userId is required")
        if len(ids) > 20:
            raise invalid("at most 20 userId values")
        out = {}
        for raw in ids:
            uid = parse_id(raw)
            if uid is None:
                raise invalid(f"bad userId {raw!r}")
            if uid in self.store.users:
                out[str(uid)] = self.store.users[uid]
        return json_reply({"data": out})

    def user_update(self, req):
        """U4: only the documented editable fields."""
        uid = req.arg("userId")
        if parse_id(uid) is None:
            raise invalid("userId is required")
        self.store.user(uid)
        return json_reply({"data": self.store.update_user(uid, req.json())})

    # --- conversations --------------------------------------------------

    @staticmethod
    def _status_filter(values):
        """statusId values (repeatable or comma-separated) -> ints."""
        out = []
        for value in values:
            for part in value.split(","):
                if not part.strip():
                    continue
                try:
                    sid = int(part)
                except ValueError:
                    sid = None
                if sid not in STATUS_IDS:
                    raise invalid(f"statusId must be 1, 2 or 3, not {part!r}")
                if sid not in out:
                    out.append(sid)
        return sorted(out)

    def conversations_list(self, req):
        """V1 in the style chosen by --paging (legacy next / page_token)."""
        if self.paging == "token":
            token = req.arg("page_token") or ""
            if token:
                offset, limit, statuses = decode_page_token(token)
            else:
                offset = 0
                limit = min(req.int_arg("limit", 25, minimum=1), 100)
                statuses = self._status_filter(req.args("statusId"))
        else:
            limit = min(req.int_arg("limit", 25, minimum=1), 50)
            offset = req.int_arg("next", 0)
            statuses = self._status_filter(req.args("statusId"))
        convs = self.store.list_conversations({STATUS_IDS[s] for s in statuses})
        page = [self.store.summary(c) for c in convs[offset:offset + limit]]
        more = offset + limit < len(convs)
        out = {"data": page}
        if self.paging == "token":
            url = f"{req.base_url}/conversations/list?page_token="
            out["links"] = {"self": url + encode_page_token(offset, limit, statuses)}
            if more:
                out["links"]["next"] = url + encode_page_token(offset + limit, limit,
                                                               statuses)
        elif more:
            out["pagination"] = {"more": True, "next": str(offset + limit)}
        return json_reply(out)

    def conversations_stats(self, req):
        """V4."""
        return json_reply({"conversationCount": self.store.stats()})

    def conversation_get(self, req):
        """V2."""
        return json_reply({"data": self.store.conversation(req.params[0])})

    def conversation_new(self, req):
        """V3: bare object, no envelope."""
        conv = self.store.create_conversation(req.json())
        return json_reply({k: conv[k] for k in ("status", "participants", "contactId",
                                                 "createdAt", "id", "inboxId")})

    def messages_list(self, req):
        """M1: 50 a page, oldest first; last page shape varies by id parity."""
        conv = self.store.conversation(req.params[0])
        offset = req.int_arg("next", 0)
        msgs = self.store.messages[conv["id"]]
        out = {"data": {"messages": msgs[offset:offset + MESSAGES_PAGE]}}
        if offset + MESSAGES_PAGE < len(msgs):
            out["pagination"] = {"more": True, "next": str(offset + MESSAGES_PAGE)}
        elif conv["id"] % 2 == 0:
            out["pagination"] = {"more": False}
        return json_reply(out)

    def message_create(self, req):
        """M2: data is the created (or edit) message."""
        self.store.conversation(req.params[0])
        return json_reply({"data": self.store.add_message(req.params[0], req.json())})

    def transcript(self, req):
        """M3: plain text."""
        text = self.store.transcript(req.params[0])
        return Reply(200, text.encode("utf-8"), "text/plain; charset=utf-8")

    def attachment_data(self, req):
        """M5: raw bytes with the stored MIME type."""
        mime, data, name = self.store.attachment_data(req.params[0])
        disp = "attachment; filename*=UTF-8''" + urllib.parse.quote(name, safe="")
        return Reply(200, data, mime, {"Content-Disposition": disp})

    def report(self, req):
        """V5, behind its own 60/min bucket."""
        wait = self.faults.report_limited()
        if wait is not None:
            return rate_limit_reply(wait if wait is not False else None,
                                    "Conversation report rate limit exceeded")
        return json_reply(self.store.report(req.json()))

    # --- accounts, playbooks --------------------------------------------

    def account_create(self, req):
        """A1."""
        return json_reply({"data": self.store.create_account(req.json())})

    def account_update(self, req):
        """A4."""
        return json_reply({"data": self.store.update_account(req.json())})

    def account_get(self, req):
        """A2 (deleted accounts are still returned)."""
        return json_reply({"data": self.store.account(req.params[0])})

    def account_delete(self, req):
        """A5: soft delete."""
        self.store.delete_account(req.params[0])
        return json_reply(self.OK)

    def accounts_list(self, req):
        """A3: index/size paging, next absent at the end."""
        index = req.int_arg("index", 0)
        size = min(req.int_arg("size", 10, minimum=1), 65)
        live = self.store.live_accounts()
        data = {"accounts": live[index:index + size], "total": len(live)}
        if index + size < len(live):
            data["next"] = f"/accounts?index={index + size}&size={size}"
        return json_reply({"data": data})

    def gdpr_delete(self, req):
        """G2: erasure of every contact with the email and its
        conversations. Drift processes it asynchronously; here it is done
        before the answer, which a client must not rely on either way."""
        body = req.json()
        if not isinstance(body, dict):
            raise invalid("body must be an object")
        self.store.gdpr_delete(body.get("email"))
        return json_reply({"data": {"message": "Your delete is processing"}})

    def playbooks(self, req):
        """P1: bare array."""
        return json_reply(self.store.playbooks)

    def clps(self, req):
        """P2: bare array."""
        return json_reply(self.store.clps)


# ----------------------------------------------------------------------
# Admin
# ----------------------------------------------------------------------

class Admin:
    """The unauthenticated /_admin interface used by tests and benchmarks."""

    def __init__(self, emulator):
        self.emu = emulator
        self.router = Router()
        r = self.router
        r.add("GET", "/_admin/ping", self.ping)
        r.add("GET", "/_admin/data", self.data)
        r.add("GET", "/_admin/requests", self.requests)
        r.add("GET", "/_admin/stats", self.stats)
        r.add("POST", "/_admin/reset", self.reset)
        r.add("GET", "/_admin/faults", self.faults_get)
        r.add("POST", "/_admin/faults", self.faults_set)
        r.add("POST", "/_admin/faults/add", self.faults_add)
        r.add("POST", "/_admin/faults/clear", self.faults_clear)
        r.add("POST", "/_admin/mutate", self.mutate)
        r.add("POST", "/_admin/tokens/expire", self.tokens_expire)
        r.add("POST", "/_admin/shutdown", self.shutdown)

    def handle(self, req):
        """Route an admin request; errors use the API's error shape."""
        template, func, _, params = self.router.match(req.method, req.path)
        if template is None:
            return error_reply(func, message=f"no admin endpoint {req.method} {req.path}")
        req.params = params
        try:
            return func(req)
        except ApiError as err:
            return error_reply(err.status, err.etype, err.message, err.headers)
        except Exception:          # report the bug, keep serving
            traceback.print_exc(file=sys.stderr)
            return error_reply(500, "server_error", "internal emulator error")

    def ping(self, req):
        """Readiness probe."""
        return json_reply({"ok": True, "base_url": self.emu.base_url,
                           "paging": self.emu.api.paging})

    def data(self, req):
        """The whole dataset as the API serves each object (?org= another
        org's, one made with --org)."""
        org = req.int_arg("org", ORG_ID)
        if org not in self.emu.orgs:
            raise not_found(f"no org {org}")
        store = self.emu.orgs[org].store
        with store.lock:
            return json_reply(store.dump())

    def requests(self, req):
        """The API request log (optionally only entries after ?since=seq)."""
        return json_reply({"requests": self.emu.log.requests(req.int_arg("since", 0))})

    def stats(self, req):
        """Counters by endpoint and status."""
        return json_reply(self.emu.log.stats())

    def reset(self, req):
        """Clear the request log and counters."""
        self.emu.log.reset()
        return json_reply({"ok": True})

    def faults_get(self, req):
        """Current fault settings and pending counted faults."""
        return json_reply(self.emu.faults.settings())

    def faults_set(self, req):
        """Change standing fault settings."""
        self.emu.faults.configure(req.json())
        return json_reply(self.emu.faults.settings())

    def faults_add(self, req):
        """Queue one counted fault."""
        return json_reply({"ok": True, "id": self.emu.faults.add(req.json())})

    def faults_clear(self, req):
        """Drop pending counted faults (standing settings stay)."""
        self.emu.faults.clear()
        return json_reply({"ok": True})

    def tokens_expire(self, req):
        """Expire all OAuth access tokens now."""
        return json_reply({"ok": True, "expired": self.emu.auth.expire_all()})

    def shutdown(self, req):
        """Stop serving once this reply is sent."""
        server = self.emu.server
        return json_reply({"ok": True},
                          after=lambda: threading.Thread(target=server.shutdown,
                                                         daemon=True).start())

    def mutate(self, req):
        """Apply one op (or a list of ops) as if done in the Drift UI."""
        body = req.json()
        store = self.emu.store
        with store.lock:
            if isinstance(body, list):
                return json_reply([self._mutate_one(op) for op in body])
            return json_reply(self._mutate_one(body))

    def _mutate_one(self, op):
        """One mutation; returns the changed object."""
        store = self.emu.store
        if not isinstance(op, dict):
            raise invalid("op must be an object")
        kind = op.get("op")
        if kind == "update_contact":
            return store.update_contact(op.get("id"), op.get("attributes"))
        if kind == "delete_contact":
            return store.delete_contact(op.get("id"))
        if kind == "update_user":
            return store.update_user(op.get("id"), op.get("fields"), restricted=False)
        if kind == "set_status":
            return store.set_status(op.get("conversationId"), op.get("status"))
        if kind == "new_conversation":
            contact = store.contact(op.get("contactId"))
            body = op.get("body", "<p>Hello from the emulator</p>")
            status = op.get("status", "open")
            if status not in STATUSES or not isinstance(body, str):
                raise invalid("bad status or body")
            return store.new_conversation(contact, body, status=status)
        if kind == "add_message":
            conv = store.conversation(op.get("conversationId"))
            atype = op.get("authorType", "contact")
            if atype == "contact":
                author = {"type": "contact",
                          "id": parse_id(op.get("authorId")) or conv["contactId"],
                          "bot": False}
            elif atype == "user":
                user = store.user(op.get("authorId", store.bot_id()))
                author = {"type": "user", "id": user["id"], "bot": bool(user.get("bot"))}
            else:
                raise invalid("authorType must be contact or user")
            msg = store.add_message(conv["id"], {"type": op.get("type", "chat"),
                                                 "body": op.get("body", "")},
                                    author=author)
            for spec in op.get("attachments") or []:
                store.admin_add_attachment(msg, spec)
            return msg
        if kind == "edit_message":
            return store.edit_message(op.get("conversationId"), op.get("messageId"),
                                      op.get("body"))
        if kind == "delete_message":
            touch = op.get("touch", True)
            if not isinstance(touch, bool):
                raise invalid("touch must be true or false")
            return store.delete_message(op.get("conversationId"), op.get("messageId"),
                                        touch=touch)
        if kind == "delete_conversation":
            return store.delete_conversation(op.get("conversationId"))
        if kind == "erase_contact":
            return store.erase_contact(op.get("id"))
        if kind == "delete_user":
            return store.delete_user(op.get("id"))
        if kind == "delete_playbook":
            return store.delete_playbook(op.get("id"))
        raise invalid(f"unknown op {kind!r}")


# ----------------------------------------------------------------------
# The emulator: ties store, API, faults and accounting together
# ----------------------------------------------------------------------

class Emulator:
    """Everything a request handler needs, hung off the server object."""

    def __init__(self, args, server, base_url):
        self.server = server
        self.base_url = base_url
        self.quiet = args.quiet
        self.store = Store(seed=args.seed, users=args.users, contacts=args.contacts,
                           conversations=args.conversations, messages=args.messages,
                           attachments=args.attachments, base_url=base_url,
                           big_conversation=args.big_conversation)
        self.auth = Auth(args.token, args.token_ttl)
        self.faults = Faults(args)
        self.log = RequestLog()
        self.api = Api(self.store, self.auth, self.faults, args.paging)
        # Other orgs (--org TOKEN=ORGID): a smaller dataset of their own,
        # seeded apart, served to that org's token only. Their ids overlap
        # the main org's, as two real orgs' ids may.
        self.orgs = {ORG_ID: self.api}
        for n, spec in enumerate(args.org or (), start=1):
            token, org = spec
            store = Store(seed=args.seed + 1000 * n, users=3, contacts=5,
                          conversations=4, messages=3, attachments=0,
                          base_url=base_url, org_id=org)
            self.orgs[org] = Api(store, self.auth, self.faults, args.paging)
            self.auth.add_install(token, org)
        self.admin = Admin(self)

    def execute(self, req, route):
        """Auth + the endpoint, with the store locked; always a Reply."""
        template, func, public, params = route
        if template is None:
            return error_reply(func, message=f"no such endpoint: {req.method} {req.path}")
        token = None if public else self.auth.check(req.headers.get("Authorization"))
        if not public and token is None:
            return error_reply(401, "authentication_error", AUTH_MESSAGE,
                               {"WWW-Authenticate": "Bearer"})
        api = self.api if token is None else self.orgs[self.auth.org_of(token)]
        if api is not self.api:     # the same endpoint, on that org's data
            func = getattr(api, func.__name__)
        req.params = params
        try:
            with api.store.lock:
                return func(req)
        except ApiError as err:
            return error_reply(err.status, err.etype, err.message, err.headers)
        except Exception:          # a bug here must not kill the connection
            traceback.print_exc(file=sys.stderr)
            return error_reply(500, "server_error", "internal emulator error")

    def serve_api(self, handler, req):
        """Run one API request through faults, auth and the endpoint."""
        route = self.api.router.match(req.method, req.path)
        endpoint = Router.endpoint_key(req.method, route[0], req.path)
        status, fault_kind, recorded = 0, None, False
        arrived = self.log.arrive()
        try:
            delay = self.faults.latency()
            if delay > 0:
                time.sleep(delay)
            fault = self.faults.take(req.method, req.path)
            if fault is not None:
                fault_kind = fault["kind"]
                status = self._apply_fault(handler, req, route, fault)
                return
            wait = self.faults.rate_limited()
            failure = self.faults.random_failure() if wait is None else None
            if wait is not None:
                reply = rate_limit_reply(wait if wait is not False else None)
                fault_kind = "rate_limit"
            elif failure is not None:
                reply = error_reply(failure, "server_error", "injected failure")
                fault_kind = "fail_rate"
            else:
                reply = self.execute(req, route)
            status = reply.status
            # Logged before the reply leaves: a client that sends its next
            # request as soon as this answer arrives must find this one in
            # the log already, in order.
            self.log.record(req, endpoint, status, fault_kind, arrived)
            recorded = True
            handler.send_reply(reply)
        finally:
            if not recorded:
                self.log.record(req, endpoint, status, fault_kind, arrived)
            if not self.quiet:
                sys.stderr.write(f"{req.method} {req.raw_path}"
                                 f"{'?' + req.query_string if req.query_string else ''}"
                                 f" -> {status}{' [' + fault_kind + ']' if fault_kind else ''}\n")

    def _apply_fault(self, handler, req, route, fault):
        """Serve a request under a counted fault; returns the logged status."""
        kind = fault["kind"]
        headers = {}
        if fault.get("retry_after") is not None:
            headers["Retry-After"] = str(max(1, math.ceil(fault["retry_after"])))
        if kind == "status":
            if fault.get("process_first"):
                # The backend acted, then a gateway answered with an
                # error (a timeout after the write): the change is kept.
                self.execute(req, route)
            elif fault.get("process_after") is not None:
                # A gateway that gave up while the backend was still
                # writing: the change lands that many seconds after the
                # error answer.
                timer = threading.Timer(fault["process_after"], self.execute,
                                        (req, route))
                timer.daemon = True
                timer.start()
            reply = error_reply(fault["status"], message=f"injected HTTP {fault['status']}",
                                headers=headers)
        elif kind == "burst429":
            reply = error_reply(429, "rate_limit_exceeded", "API rate limit exceeded",
                                headers)
        elif kind == "malformed":
            reply = Reply(200, b'{"data": [')
        elif kind == "redirect":
            target = req.raw_path + ("?" + req.query_string if req.query_string else "")
            headers["Location"] = fault["location"].replace("{path}", target)
            reply = error_reply(fault["status"], "redirect", "moved", headers)
        elif kind == "body":
            reply = Reply(fault["status"], fault["body"].encode("utf-8"), headers=headers)
        elif kind == "echo":
            reply = Reply(fault["status"], echo_body(fault["body"], req).encode("utf-8"),
                          ctype="text/plain; charset=utf-8", headers=headers)
        elif kind == "stall":
            if fault.get("process_first"):
                reply = self.execute(req, route)
                time.sleep(fault["seconds"])
            else:
                time.sleep(fault["seconds"])
                reply = self.execute(req, route)
        elif kind == "huge":
            pad = fault["bytes"] - len(b'{"data":""}')
            reply = Reply(200, b'{"data":"' + b"x" * pad + b'"}')
        elif kind == "repeat_cursor":
            reply = repeat_cursor(req, self.execute(req, route))
        elif kind == "rewind":
            reply = self.execute(rewind(req, fault["by"]), route)
        elif kind == "throttle":
            reply = self.execute(req, route)
            handler.send_throttled(reply, fault["bytes_per_second"],
                                   fault["stall_after"], fault["seconds"])
            return reply.status
        elif kind == "reset":
            if fault.get("process_first"):
                self.execute(req, route)
            handler.abort_connection()
            return 0
        else:                      # truncate, reset_mid_body: real body, cut
            reply = self.execute(req, route)
            handler.send_partial(reply, rst=(kind == "reset_mid_body"))
            return reply.status
        handler.send_reply(reply)
        return reply.status


# ----------------------------------------------------------------------
# Connection handler
# ----------------------------------------------------------------------

class Handler(BaseHTTPRequestHandler):
    """HTTP/1.1 keep-alive handler; every reply carries Content-Length."""

    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True   # else ~40 ms delayed-ACK stalls
    server_version = "DriftEmulator/1.0"
    sys_version = ""
    timeout = 600                    # idle keep-alive connections end

    def setup(self):
        """With TLS, the handshake happens here, under the handler's timeout;
        a client that rejects the certificate ends the connection here."""
        super().setup()
        if isinstance(self.connection, ssl.SSLSocket):
            try:
                self.connection.do_handshake()
            except (ssl.SSLError, OSError) as err:
                if not self.server.emulator.quiet:
                    sys.stderr.write(f"TLS handshake failed: {err}\n")
                raise

    def version_string(self):
        """Server header without the Python version."""
        return self.server_version

    def do_GET(self):
        """GET."""
        self.dispatch()

    do_POST = do_PATCH = do_PUT = do_DELETE = do_HEAD = do_GET

    def log_request(self, code="-", size="-"):
        """Request lines are logged by Emulator.serve_api instead."""

    def log_message(self, fmt, *args):
        """Protocol-level messages go to stderr unless --quiet."""
        if not self.server.emulator.quiet:
            sys.stderr.write("%s - %s\n" % (self.address_string(), fmt % args))

    def read_body(self):
        """The request body (Content-Length or chunked), bounded."""
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            parts, total = [], 0
            while True:
                line = self.rfile.readline(1024)
                size = int(line.split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline(1024) not in (b"\r\n", b"\n", b""):
                        pass
                    return b"".join(parts)
                total += size
                if total > MAX_BODY:
                    raise ApiError(413, "validation_error", "request body too large")
                parts.append(self.rfile.read(size))
                self.rfile.readline(1024)
        length = self.headers.get("Content-Length")
        if not length:
            return b""
        try:
            length = int(length)
        except ValueError:
            raise invalid("bad Content-Length")
        if length < 0 or length > MAX_BODY:
            raise ApiError(413, "validation_error", "request body too large")
        return self.rfile.read(length)

    def dispatch(self):
        """Read the request, then hand it to the admin or API side."""
        emu = self.server.emulator
        try:
            try:
                body = self.read_body()
            except (ApiError, ValueError) as err:
                self.close_connection = True
                status = getattr(err, "status", 400)
                self.send_reply(error_reply(status, message=str(err)))
                return
            target = self.path
            if "://" in target.split("?", 1)[0]:           # absolute-form
                parts = urllib.parse.urlsplit(target)
                target = parts.path + ("?" + parts.query if parts.query else "")
            raw_path, _, query = target.partition("?")
            req = Request(self.command, raw_path, query, body, self.headers,
                          emu.base_url)
            if req.path == "/_admin" or req.path.startswith("/_admin/"):
                self.send_reply(emu.admin.handle(req))
            else:
                emu.serve_api(self, req)
        except (BrokenPipeError, ConnectionResetError, socket.timeout):
            self.close_connection = True

    def send_reply(self, reply):
        """Write a whole reply, then run its ``after`` hook."""
        self.send_response(reply.status)
        self.send_header("Content-Type", reply.ctype)
        self.send_header("Content-Length", str(len(reply.body)))
        for key, value in reply.headers:
            self.send_header(key, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(reply.body)
        self.wfile.flush()
        if reply.after:
            reply.after()

    def abort_connection(self):
        """Close the socket with RST (SO_LINGER 0), sending nothing more."""
        self.close_connection = True
        sock = self.connection
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        except OSError:
            pass
        # The socket only really closes once its file objects are closed.
        for f in (self.rfile, self.wfile):
            try:
                f.close()
            except OSError:
                pass
        sock.close()
        # http.server still flushes and closes these after the method returns.
        self.rfile, self.wfile = io.BytesIO(), io.BytesIO()

    def send_throttled(self, reply, bps, stall_after, seconds):
        """The whole reply, its body paced to bps bytes/s in small pieces
        (a slow link that keeps moving). With stall_after, nothing more is
        sent once that many body bytes are out, for seconds, before the
        rest follows (a stalled transfer)."""
        self.send_response(reply.status)
        self.send_header("Content-Type", reply.ctype)
        self.send_header("Content-Length", str(len(reply.body)))
        for key, value in reply.headers:
            self.send_header(key, value)
        self.end_headers()
        self.wfile.flush()
        body = b"" if self.command == "HEAD" else reply.body
        piece = max(1, int(bps / 20))          # 20 pieces a second
        start, sent, stalled = time.monotonic(), 0, False
        while sent < len(body):
            if stall_after is not None and not stalled and sent >= stall_after:
                stalled = True
                time.sleep(seconds)
                start = time.monotonic() - sent / bps
            end = len(body) if stall_after is None or stalled else \
                max(stall_after, sent + 1)
            n = min(piece, end - sent)
            self.wfile.write(body[sent:sent + n])
            self.wfile.flush()
            sent += n
            ahead = start + sent / bps - time.monotonic()
            if ahead > 0:
                time.sleep(ahead)

    def send_partial(self, reply, rst):
        """Full Content-Length, half the body, then FIN (or RST)."""
        self.close_connection = True
        self.send_response(reply.status)
        self.send_header("Content-Type", reply.ctype)
        self.send_header("Content-Length", str(len(reply.body)))
        for key, value in reply.headers:
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(reply.body[:len(reply.body) // 2])
        self.wfile.flush()
        if rst:
            time.sleep(0.05)          # let the half body reach the client
            self.abort_connection()


class EmulatorServer(ThreadingHTTPServer):
    """ThreadingHTTPServer with daemon threads and a deep accept queue."""

    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128

    tls = None                       # an ssl.SSLContext serves HTTPS

    def get_request(self):
        """Accept; with TLS, wrap the socket but leave the handshake to the
        connection's own thread (a stuck client must not block accept)."""
        sock, addr = super().get_request()
        if self.tls is not None:
            sock = self.tls.wrap_socket(sock, server_side=True,
                                        do_handshake_on_connect=False)
        return sock, addr

    def handle_error(self, request, client_address):
        """Connection errors are expected under fault injection."""
        exc = sys.exc_info()[1]
        if isinstance(exc, (ConnectionError, socket.timeout, OSError)):
            return
        super().handle_error(request, client_address)


# ----------------------------------------------------------------------
# Command line
# ----------------------------------------------------------------------

def org_spec(text):
    """TOKEN=ORGID of --org."""
    token, _, org = text.partition("=")
    if not token or not org.isdigit() or int(org) == ORG_ID:
        raise argparse.ArgumentTypeError(
            f"--org wants TOKEN=ORGID, an org other than {ORG_ID}")
    return token, int(org)


def parse_args(argv):
    """The command line (see README.md)."""
    p = argparse.ArgumentParser(description="Drift REST API emulator for driftfs tests")
    p.add_argument("--host", default="127.0.0.1", help="listen address")
    p.add_argument("--port", type=int, default=0, help="port, 0 = any free one")
    p.add_argument("--port-file", help="write the chosen port here once ready")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--users", type=int, default=6, help="users incl. the bot")
    p.add_argument("--contacts", type=int, default=40)
    p.add_argument("--conversations", type=int, default=60)
    p.add_argument("--messages", type=int, default=8,
                   help="mean messages per conversation")
    p.add_argument("--attachments", type=int, default=10)
    p.add_argument("--big-conversation", type=int, default=0, metavar="N",
                   help="give the second conversation N messages (a huge messages/ "
                        "directory, for benchmarks)")
    p.add_argument("--token", default="demo-token", help="accepted install token")
    p.add_argument("--org", action="append", type=org_spec, metavar="TOKEN=ORGID",
                   help="serve another org (a small dataset of its own) to this "
                        "install token; repeatable")
    p.add_argument("--token-ttl", type=int, default=7200,
                   help="lifetime of OAuth access tokens, seconds")
    p.add_argument("--paging", choices=("legacy", "token"), default="legacy")
    p.add_argument("--latency", type=float, default=0, help="ms before each reply")
    p.add_argument("--rate", type=float, default=0, help="requests/s, 0 = off")
    p.add_argument("--burst", type=float, default=0, help="bucket size")
    p.add_argument("--retry-after", dest="retry_after", action="store_true", default=True)
    p.add_argument("--no-retry-after", dest="retry_after", action="store_false")
    p.add_argument("--fail-rate", type=float, default=0.0)
    p.add_argument("--fail-status", type=int, default=503)
    p.add_argument("--report-limit", type=float, default=60,
                   help="reports calls per minute")
    p.add_argument("--quiet", action="store_true")
    p.add_argument("--tls-cert", help="serve HTTPS with this PEM certificate (chain)")
    p.add_argument("--tls-key", help="the certificate's PEM private key")
    args = p.parse_args(argv)
    if bool(args.tls_cert) != bool(args.tls_key):
        p.error("--tls-cert and --tls-key go together")
    for name in ("users", "contacts", "conversations", "messages", "attachments"):
        if getattr(args, name) < 0:
            p.error(f"--{name} must be >= 0")
    if args.users < 1:
        p.error("--users must be >= 1 (the bot)")
    if args.conversations > 0 and args.contacts < 1:
        p.error("conversations need --contacts >= 1")
    if not 0 <= args.fail_rate <= 1:
        p.error("--fail-rate is a fraction 0..1")
    if args.rate < 0 or args.burst < 0 or args.latency < 0:
        p.error("--rate, --burst and --latency must be >= 0")
    return args


def write_port_file(path, port):
    """Atomically publish the port (tmp file + rename)."""
    tmp = f"{path}.tmp.{os.getpid()}"
    with open(tmp, "w") as f:
        f.write(f"{port}\n")
    os.replace(tmp, path)


def main(argv=None):
    """Bind, build the dataset, publish the port, serve until shut down."""
    args = parse_args(argv)
    tls = None
    if args.tls_cert:
        tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        try:
            tls.load_cert_chain(args.tls_cert, args.tls_key)
        except (OSError, ssl.SSLError) as err:
            print(f"drift_emulator: cannot load {args.tls_cert} / {args.tls_key}: {err}",
                  file=sys.stderr)
            return 1
    server_class = EmulatorServer
    if ":" in args.host:
        server_class = type("EmulatorServer6", (EmulatorServer,),
                            {"address_family": socket.AF_INET6})
    try:
        server = server_class((args.host, args.port), Handler)
    except OSError as err:
        print(f"drift_emulator: cannot listen on {args.host}:{args.port}: {err}",
              file=sys.stderr)
        return 1
    server.tls = tls
    port = server.server_address[1]
    host = f"[{args.host}]" if ":" in args.host else args.host
    scheme = "https" if tls else "http"
    server.emulator = Emulator(args, server, f"{scheme}://{host}:{port}")
    if args.port_file:
        write_port_file(args.port_file, port)

    def stop(signum, frame):
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    if not args.quiet:
        sys.stderr.write(f"drift emulator listening on {server.emulator.base_url}\n")
    # How soon a SIGTERM ends the loop: every test stops an emulator, and
    # waited for this poll, 0.2 s each, 45 s of a suite run at 0.2.
    server.serve_forever(poll_interval=0.02)
    server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
