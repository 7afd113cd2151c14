# SPDX-License-Identifier: MIT
"""Seeded Drift account data and the in-memory store the emulator serves.

This module knows nothing about HTTP. It builds a deterministic dataset
(same parameters -> byte-identical JSON) full of the awkward cases a client
must survive, and implements every state change the REST API or the admin
interface can make. Callers hold ``Store.lock`` around every call: one coarse
lock keeps the model simple, and every operation is cheap.

Errors are raised as ``ApiError`` carrying the HTTP status and the Drift
error type, so the HTTP layer only has to render them.
"""

import base64
import calendar
import hashlib
import html
import random
import re
import threading
import time

# Seeded objects get timestamps around this instant (2025-11-23), never the
# wall clock, so a dataset is reproducible.
BASE_MS = 1763900000000
DAY_MS = 86400000
ORG_ID = 1351205

# Ids for contacts, conversations and messages are above 2**32 like the real
# ones; one of each is above 2**53 (odd, so no IEEE double can hold it) to
# catch clients that parse ids as doubles.
CONTACT_ID_BASE, CONTACT_ID_STEP = 17035536800, 7919
CONV_ID_BASE, CONV_ID_STEP = 5782727146, 7907
MSG_ID_BASE, MSG_ID_STEP = 12367319626, 131
ATTACHMENT_ID_BASE, ATTACHMENT_ID_STEP = 70000001, 37
HUGE_CONTACT_ID = 2 ** 53 + 1
HUGE_CONV_ID = 2 ** 53 + 3
HUGE_MSG_ID = 2 ** 53 + 5
BOT_USER_ID = 228224
USER_ID_BASE, USER_ID_STEP = 243266, 1031
PLAYBOOK_ID_BASE = 1122498147
DEFAULT_INBOX = 62491
INBOXES = (62491, 62492, 70113)

# The one phrase tests grep for; it occurs in exactly one seeded message.
PLANTED_PHRASE = "purple elephant quorum"

STATUSES = ("open", "closed", "pending", "bulk_sent")
# statusId query values of GET /conversations/list.
STATUS_IDS = {1: "open", 2: "closed", 3: "pending"}

CONTACT_MSG_LINES = (
    "Hi, I have a question about pricing.",
    "Can I get a demo next week?",
    "Our team has 40 seats, what plan fits?",
    "Thanks, that helps!",
    "Is there an API for exporting data?",
    "We use Salesforce & HubSpot; do you integrate?",
    "Where can I find last month's invoice?",
    "The login page shows an error <500> sometimes.",
    "ok",
    "Could you send the docs again?",
    "Does the \"Enterprise\" tier include SSO?",
    "I'll check with my manager and get back to you.",
)
AGENT_MSG_LINES = (
    "Happy to help! Let me look into that.",
    "Sure, I've sent the docs to your inbox.",
    "Our Pro plan covers up to 50 seats.",
    "Yes, we integrate with Salesforce & HubSpot.",
    "Could you share a screenshot of the error?",
    "I've escalated this to our billing team.",
    "That's fixed now, sorry for the trouble.",
    "Let's set up a call for Tuesday at 10:00.",
)
BOT_MSG_LINES = (
    "Hi there! What brings you here today?",
    "I can help you book a meeting with our team.",
    "Thanks! Someone from our team will be right with you.",
    "Before we start, what's your work email?",
    "You're all set. Talk soon!",
)
NOTE_LINES = (
    "Hot lead, follow up Friday.",
    "Customer is on legacy pricing <2019>.",
    "Checked Stripe: invoice #4411 paid.",
)

FIRST_NAMES = ("Ada", "Grace", "Alan", "Katherine", "Linus", "Margaret",
               "Dennis", "Barbara", "Ken", "Frances", "John", "Radia",
               "Edsger", "Hedy", "Tim", "Sophie", "Donald", "Shafi")
LAST_NAMES = ("Lovelace", "Hopper", "Turing", "Johnson", "Torvalds",
              "Hamilton", "Ritchie", "Liskov", "Thompson", "Allen",
              "McCarthy", "Perlman", "Dijkstra", "Lamarr", "Berners-Lee",
              "Wilson", "Knuth", "Goldwasser")
DOMAINS = ("acme.example", "globex.example", "initech.example",
           "umbrella.example", "hooli.example", "piedpiper.example")
CITIES = ("Berlin", "São Paulo", "Tokyo", "Austin", "Zürich", "Nairobi")
PLANS = ("free", "pro", "enterprise")
TAG_COLORS = ("0960C5", "E53935", "43A047", "FDD835", "8E24AA")
LONG_TAG = ("quarterly-review-" * 20) + "end"          # 343 characters
CONVERSATION_TAGS = (
    {"color": "0960C5", "name": "billing"},
    {"color": "E53935", "name": "escalations/tier-2"},
    {"color": "43A047", "name": "renewal"},
    {"color": "FDD835", "name": "Größe 🚀"},
)
LONG_EMAIL = ("extremely.long.local.part.for.testing.name.limits.0123456789abc"
              "@" + "a" * 63 + "." + "b" * 63 + "." + "c" * 63 + ".example")

# Special conversation indexes -> forced message counts. 50 and 100 are
# exact page multiples; 6 and 7 are empty and share a timestamp (tie break).
SPECIAL_MESSAGE_COUNTS = {0: 12, 1: 137, 2: 101, 3: 50, 4: 51, 5: 100,
                          6: 0, 7: 0, 8: 75, 9: 6, 10: 4}
PLANTED_CONV_INDEX = 9
ODD_BODY_CONV_INDEX = 10


class ApiError(Exception):
    """An API-level failure: HTTP status + Drift error type + message."""

    def __init__(self, status, etype, message, headers=None):
        super().__init__(message)
        self.status = status
        self.etype = etype
        self.message = message
        self.headers = headers or {}


def not_found(what):
    """Shorthand for the 404 every unknown object produces."""
    return ApiError(404, "not_found", f"{what} not found")


def invalid(message):
    """Shorthand for a 400 validation error."""
    return ApiError(400, "validation_error", message)


def html_escape(text):
    """Escape text the way Drift's editor does (&#39; for the apostrophe)."""
    return (text.replace("&", "&amp;").replace("<", "&lt;")
            .replace(">", "&gt;").replace('"', "&quot;")
            .replace("'", "&#39;"))


def html_to_text(body):
    """Rough HTML -> text for transcripts: <br> and </p> become newlines."""
    text = re.sub(r"(?i)<br\s*/?>|</p>", "\n", body or "")
    text = re.sub(r"<[^>]*>", "", text)
    return html.unescape(text).strip("\n")


def parse_id(value):
    """Accept an id as a JSON integer or a string of digits; else None.

    Booleans and floats are refused: a float id has already lost precision.
    """
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value if value >= 0 else None
    if isinstance(value, str) and value.isdigit() and len(value) < 40:
        return int(value)
    return None


def parse_time(value, end_of_day=False):
    """Report filter time: ms integer or "YYYY-MM-DD" (UTC); else ApiError."""
    if isinstance(value, bool):
        raise invalid(f"bad time value {value!r}")
    if isinstance(value, (int, float)):
        return int(value)
    if isinstance(value, str):
        if value.isdigit():
            return int(value)
        try:
            tm = time.strptime(value, "%Y-%m-%d")
        except ValueError:
            raise invalid(f"bad date {value!r}, want YYYY-MM-DD or ms")
        ms = calendar.timegm(tm) * 1000
        return ms + DAY_MS - 1 if end_of_day else ms
    raise invalid(f"bad time value {value!r}")


def attachment_bytes(seed, meta):
    """Regenerate an attachment's bytes from the seed (never stored).

    Text kinds are valid UTF-8 of exactly ``size`` bytes; binary kinds start
    with a real magic number and are guaranteed to contain NUL bytes.
    """
    if "data" in meta:                       # created at run time
        return meta["data"]
    size = meta["size"]
    rng = random.Random(f"attachment:{seed}:{meta['id']}")
    if meta["kind"] == "text":
        header = f"{meta['fileName']}: generated for the Drift emulator\n"
        parts = [header.encode() if len(header.encode()) <= size else b""]
        total = len(parts[0])
        n = 0
        while total < size:
            line = (f"{n:06d},{rng.randint(0, 10 ** 9)},"
                    f"{rng.choice(CONTACT_MSG_LINES)}\n").encode()
            parts.append(line)
            total += len(line)
            n += 1
        data = b"".join(parts)[:size]
        while True:                 # a cut inside a UTF-8 sequence: pad
            try:
                data.decode("utf-8")
                return data
            except UnicodeDecodeError as err:
                data = data[:err.start] + b"." * (len(data) - err.start)
    magic = {"application/pdf": b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n",
             "image/png": b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR"}.get(
                 meta["mimeType"], b"\x7fBIN\x00\x01")
    data = bytearray((magic + rng.randbytes(max(0, size)))[:size])
    for i in range(len(magic), size, 997):   # NULs guaranteed
        data[i] = 0
    return bytes(data)


class Store:
    """The whole account in memory plus every operation on it.

    Objects are stored exactly as the API serves them (plain dicts in the
    documented key order), so serving is just json.dumps. Hidden bookkeeping
    for attachments (kind, size, runtime bytes) lives in ``attachments``,
    never inside a served object. Hold ``lock`` around every method call.
    """

    def __init__(self, seed=1, users=6, contacts=40, conversations=60,
                 messages=8, attachments=10, base_url="http://127.0.0.1",
                 big_conversation=0, org_id=ORG_ID):
        self.lock = threading.RLock()
        self.seed = seed
        self.base_url = base_url.rstrip("/")
        self.org_id = org_id
        self.users = {}            # id -> user
        self.contacts = {}         # id -> contact
        self.conversations = {}    # id -> full conversation
        self.messages = {}         # conversation id -> [message], by time
        self.attachments = {}      # id -> meta (+ "kind", maybe "data")
        self.playbooks = []
        self.clps = []
        self.accounts = {}         # accountId -> account
        self.attributes = []
        self.timeline = {}         # contact id (str) -> [event]
        self.unsubscribed = []
        self._order = None         # cached conversation ids, list order
        rng = random.Random(seed)
        self._gen_users(rng, users)
        self._gen_playbooks(rng)
        self._gen_attributes()
        self._gen_contacts(rng, contacts)
        self._big = big_conversation
        self._gen_conversations(rng, conversations, messages)
        self._gen_attachments(rng, attachments)
        self._gen_accounts(rng)
        self._next_contact = CONTACT_ID_BASE + (contacts + 1000) * CONTACT_ID_STEP
        self._next_conv = CONV_ID_BASE + (conversations + 1000) * CONV_ID_STEP
        self._next_msg = MSG_ID_BASE + (self._msg_count + 1000) * MSG_ID_STEP
        self._next_attachment = ATTACHMENT_ID_BASE + (attachments + 1000) * ATTACHMENT_ID_STEP
        self._next_account = 200000
        # Runtime timestamps are strictly increasing and later than anything
        # seeded, so a change always moves an object to the top of the list.
        self._clock = max([c["updatedAt"] for c in self.conversations.values()]
                          + [u["updatedAt"] for u in self.users.values()]
                          + [BASE_MS])

    # ------------------------------------------------------------------
    # Generation (deterministic; only ``rng`` supplies randomness)
    # ------------------------------------------------------------------

    def _gen_users(self, rng, n):
        """Users: a bot first, then people; optional fields sometimes absent."""
        bot = {"id": BOT_USER_ID, "orgId": self.org_id, "name": "Driftbot",
               "alias": "Driftbot", "availability": "AVAILABLE",
               "role": "member", "verified": True, "bot": True,
               "createdAt": BASE_MS - 900 * DAY_MS,
               "updatedAt": BASE_MS - 800 * DAY_MS}
        self.users[bot["id"]] = bot
        roles = ("admin", "member", "agent")
        avail = ("AVAILABLE", "OFFLINE", "ON_CALL")
        for k in range(1, max(1, n)):
            first = FIRST_NAMES[(k - 1) % len(FIRST_NAMES)]
            last = LAST_NAMES[(k * 7) % len(LAST_NAMES)]
            name = f"{first} {last}" if k != 3 else "Søren Kierkegaard"
            uid = USER_ID_BASE + k * USER_ID_STEP
            created = BASE_MS - rng.randint(200, 900) * DAY_MS
            user = {"id": uid, "orgId": self.org_id, "name": name,
                    "alias": first,
                    "email": f"{first.lower()}.{k}@driftfs-demo.example",
                    "phone": f"555-{rng.randint(100, 999)}-{rng.randint(1000, 9999)}",
                    "locale": ("en-US", "de-DE", "fr-FR")[k % 3],
                    "availability": avail[k % 3],
                    "role": roles[k % 3],
                    "timeZone": ("America/New_York", "Europe/Berlin",
                                 "Asia/Tokyo")[k % 3],
                    "avatarUrl": f"https://avatars.example/{uid}.png",
                    "verified": k % 4 != 0, "bot": False,
                    "createdAt": created,
                    "updatedAt": created + rng.randint(1, 150) * DAY_MS}
            if k % 3 == 2:          # attributes are absent when unset
                del user["phone"], user["avatarUrl"]
            if k % 4 == 3:
                del user["alias"], user["timeZone"]
            self.users[uid] = user

    def _gen_playbooks(self, rng):
        """Playbooks (§9) and conversational landing pages."""
        names = ("Welcome", "Pricing page", "Book a meeting", "Re-engage")
        kinds = ("BOOK_MORE_MEETINGS", "CAPTURE_LEADS", "BOOK_MORE_MEETINGS",
                 "SUPPORT")
        people = [u for u in self.users if not self.users[u]["bot"]] or [BOT_USER_ID]
        for k, name in enumerate(names):
            created = BASE_MS - rng.randint(100, 500) * DAY_MS
            author = people[k % len(people)]
            goal = "%08x-%04x-%04x-%04x-%012x" % (
                rng.getrandbits(32), rng.getrandbits(16), rng.getrandbits(16),
                rng.getrandbits(16), rng.getrandbits(48))
            self.playbooks.append({
                "id": PLAYBOOK_ID_BASE + k * 1013, "name": name,
                "orgId": self.org_id, "meta": {}, "createdAt": created,
                "updatedAt": created + rng.randint(1, 90) * DAY_MS,
                "createdAuthorId": author, "updatedAuthorId": author,
                "interactionId": 305989 + k, "reportType": kinds[k],
                "goals": [{"id": goal, "message": "Thanks! We'll be in touch."}]})
        for k in (0, 2):
            self.clps.append({"playbookId": self.playbooks[k]["id"],
                              "playbookName": self.playbooks[k]["name"],
                              "landingPageUrl": f"https://drift.me/demo/clp-{k}"})

    def _gen_attributes(self):
        """Custom attribute definitions (C10); contacts use these keys."""
        self.attributes = [
            {"type": "STRING", "displayName": "City", "name": "city"},
            {"type": "NUMERIC", "displayName": "age", "name": "age"},
            {"type": "STRING", "displayName": "Plan", "name": "plan"},
            {"type": "NUMERIC", "displayName": "Lead score", "name": "lead_score"},
            {"type": "BOOLEAN", "displayName": "VIP", "name": "vip"},
            {"type": "DATE", "displayName": "Trial end", "name": "trial_end"},
            {"type": "DATETIME", "displayName": "Last demo", "name": "last_demo_at"},
        ]

    def _contact_attrs(self, rng, k):
        """Ordinary attributes for the k-th contact (specials patch these)."""
        first = FIRST_NAMES[k % len(FIRST_NAMES)]
        last = LAST_NAMES[(k * 5 + 3) % len(LAST_NAMES)]
        dom = DOMAINS[k % len(DOMAINS)]
        version = rng.randint(1, 9)
        attrs = {"email": f"{first.lower()}.{last.lower()}{k}@{dom}",
                 "name": f"{first} {last}",
                 "phone": f"555-{rng.randint(100, 999)}-{rng.randint(1000, 9999)}",
                 "externalId": f"cust-{k:05d}", "external_id": f"cust-{k:05d}",
                 "tags": [], "events": {}, "socialProfiles": {},
                 "start_date": 0, "last_active": 0,
                 "_END_USER_VERSION": version, "_end_user_version": version,
                 "_calculated_version": version}
        ntags = rng.choice((0, 0, 1, 2))
        for t in range(ntags):
            attrs["tags"].append({"name": ("lead", "customer", "trial",
                                           "partner")[(k + t) % 4],
                                  "color": TAG_COLORS[(k + t) % len(TAG_COLORS)]})
        if rng.random() < 0.7:
            attrs["city"] = rng.choice(CITIES)
        if rng.random() < 0.5:
            attrs["age"] = rng.randint(19, 70)
        if rng.random() < 0.6:
            attrs["plan"] = rng.choice(PLANS)
            attrs["lead_score"] = rng.randint(0, 100)
        if rng.random() < 0.3:
            attrs["vip"] = rng.random() < 0.5
            attrs["trial_end"] = BASE_MS + rng.randint(1, 60) * DAY_MS
        if rng.random() < 0.4:
            attrs["original_ip"] = f"198.51.100.{rng.randint(1, 254)}"
            attrs["last_context_location"] = (
                '{"city":"%s","country":"DE"}' % rng.choice(CITIES))
            attrs["recent_source"] = rng.choice(("google", "direct", "linkedin"))
        if rng.random() < 0.3:
            attrs["first_name"] = first
        return attrs

    def _gen_contacts(self, rng, n):
        """Contacts; the first slots hold the required awkward cases."""
        for k in range(n):
            cid = HUGE_CONTACT_ID if k == 0 else CONTACT_ID_BASE + k * CONTACT_ID_STEP
            # All contacts predate every seeded conversation (-150 days).
            created = (BASE_MS - 600 * DAY_MS + k * (400 * DAY_MS // max(1, n))
                       + rng.randint(0, DAY_MS // 2))
            a = self._contact_attrs(rng, k)
            if k == 0:
                a["name"] = "Ada Lovelace"
                a["tags"] = [{"name": "vip", "color": "E53935"}]
            elif k == 1:
                a["name"] = "Zoë 🚀 Ñandú"
                a["email"] = "zoe@umbrella.example"
                a["city"] = "Zürich"
            elif k == 2:
                a["name"] = "Bobby\nTables\tJr."
            elif k == 3:
                a["name"] = "\x1b[31mRed Alert\x1b[0m Ltd"
            elif k in (4, 5):           # one email, two contacts; 4 is older
                a["email"] = "shared@acme.example"
                a["externalId"] = a["external_id"] = f"ext-shared-{'ab'[k - 4]}"
                a["name"] = ("Sam Shared (old)", "Sam Shared (new)")[k - 4]
            elif k == 6:
                a["externalId"] = a["external_id"] = "crm/acct/42"
                a["tags"] = [{"name": "sales/emea", "color": "0960C5"},
                             {"name": LONG_TAG, "color": "43A047"}]
                a["socialProfiles"] = {"linkedin": "https://linkedin.example/in/x"}
            elif k == 7:
                a["email"] = LONG_EMAIL
            elif k == 8:                # no externalId was ever sent
                a["externalId"] = None
                del a["external_id"]
            elif k in (9, 10):          # the older plain-string tag shape
                a["tags"] = ["vip", "beta/tester"] if k == 9 else ["newsletter"]
            elif k == 11:               # anonymous lead: no name, no phone
                del a["name"], a["phone"]
            a["start_date"] = created
            a["last_active"] = created + rng.randint(0, 90) * DAY_MS
            self.contacts[cid] = {"id": cid, "createdAt": created, "attributes": a}

    def _gen_conversations(self, rng, n, mean):
        """Conversations with their messages; updatedAt = last message."""
        contact_ids = list(self.contacts)
        if n and not contact_ids:
            raise ValueError("conversations need at least one contact")
        reserve = 3 if len(contact_ids) >= 15 else 0   # contacts w/o convs
        active = contact_ids[:len(contact_ids) - reserve]
        agents = [u for u in self.users if not self.users[u]["bot"]]
        self._msg_count = 0
        tie_time = BASE_MS - 30 * DAY_MS + 4242
        for i in range(n):
            cid = HUGE_CONV_ID if i == 0 else CONV_ID_BASE + i * CONV_ID_STEP
            contact = active[i] if i < len(active) else rng.choice(active)
            status = rng.choices(STATUSES, (35, 45, 10, 10))[0]
            created = BASE_MS - rng.randint(0, 150 * DAY_MS)
            if i in (6, 7):
                created = tie_time
            count = SPECIAL_MESSAGE_COUNTS.get(i, rng.randint(0, 2 * mean))
            if i == 1 and self._big:
                count = self._big             # one directory of that size
            if i in (PLANTED_CONV_INDEX, ODD_BODY_CONV_INDEX) or i < 6:
                status = rng.choice(("open", "closed"))
            participants = rng.sample(agents, min(len(agents), rng.randint(0, 2)))
            conv = {"id": cid, "status": status, "contactId": contact,
                    "inboxId": INBOXES[rng.randrange(len(INBOXES))],
                    "participants": participants, "createdAt": created,
                    "updatedAt": created}
            if rng.random() < 0.4 and self.playbooks:
                conv["relatedPlaybookId"] = rng.choice(self.playbooks)["id"]
            tags = rng.sample(CONVERSATION_TAGS, rng.choice((0, 0, 1, 2)))
            if i == 1:
                tags = [CONVERSATION_TAGS[1], CONVERSATION_TAGS[3]]
            conv["conversationTags"] = [dict(t) for t in tags]
            msgs = self._gen_messages(rng, conv, count, i)
            if msgs:
                conv["updatedAt"] = msgs[-1]["createdAt"]
            self.conversations[cid] = conv
            self.messages[cid] = msgs

    def _gen_messages(self, rng, conv, count, conv_index):
        """The messages of one conversation, oldest first."""
        msgs = []
        t = conv["createdAt"] + rng.randint(0, 5000)
        bulk = conv["status"] == "bulk_sent"
        for j in range(count):
            mid = MSG_ID_BASE + self._msg_count * MSG_ID_STEP
            if conv_index == 0 and j == 0:
                mid = HUGE_MSG_ID
            self._msg_count += 1
            roll = rng.random()
            if bulk or (j == 0 and roll < 0.5):
                kind = "bot"
            elif roll < 0.45:
                kind = "contact"
            elif roll < 0.8 and conv["participants"]:
                kind = "agent"
            else:
                kind = "bot"
            mtype = "chat"
            if kind == "agent" and rng.random() < 0.08:
                mtype = "private_note"
            body = self._gen_body(rng, kind, mtype, conv)
            if conv_index == PLANTED_CONV_INDEX and j == count // 2:
                body = ("<p>Quick note: the " + PLANTED_PHRASE +
                        " meets at noon &amp; brings snacks.</p>")
            elif conv_index == ODD_BODY_CONV_INDEX and j == 1:
                body = "<p>\x1b[31mALERT\x1b[0m the build failed again</p>"
            elif conv_index == ODD_BODY_CONV_INDEX and j == 2:
                body = "<p>Congrats on the launch 🎉🚀 — great work, Zoë!</p>"
            if kind == "contact":
                author = {"type": "contact", "id": conv["contactId"], "bot": False}
            elif kind == "agent":
                author = {"type": "user", "id": rng.choice(conv["participants"]),
                          "bot": False}
            else:
                author = {"type": "user", "id": BOT_USER_ID, "bot": True}
            msg = {"id": mid, "orgId": self.org_id, "conversationId": conv["id"],
                   "body": body, "author": author, "type": mtype,
                   "createdAt": t}
            if kind == "bot" and rng.random() < 0.3:
                msg["buttons"] = [
                    {"label": "Book a meeting", "value": "Book a meeting",
                     "type": "reply"},
                    {"label": "Just browsing", "value": "Just browsing",
                     "type": "reply"}]
            if kind == "contact" and rng.random() < 0.3:
                msg["context"] = {
                    "ip": f"203.0.113.{rng.randint(1, 254)}",
                    "userAgent": "Mozilla/5.0 (X11; Linux x86_64) Firefox/131.0"}
            if kind == "bot" and rng.random() < 0.05:
                msg["attributes"] = {"developer_app_id": "emulator-app"}
            msgs.append(msg)
            gap = rng.random()
            if gap < 0.7:
                t += rng.randint(5000, 300000)
            elif gap < 0.95:
                t += rng.randint(300000, 3 * 3600000)
            else:
                t += rng.randint(DAY_MS, 3 * DAY_MS)
        return msgs

    def _gen_body(self, rng, kind, mtype, conv):
        """An HTML body in one of the shapes Drift produces."""
        if mtype == "private_note":
            return "<p>" + html_escape(rng.choice(NOTE_LINES)) + "</p>"
        lines = {"contact": CONTACT_MSG_LINES, "agent": AGENT_MSG_LINES,
                 "bot": BOT_MSG_LINES}[kind]
        text = html_escape(rng.choice(lines))
        shape = rng.randrange(8)
        if shape == 0:
            return (f'<p>{text} See <a href="https://docs.example/api?page=2'
                    f'&amp;lang=en" target="_blank">the docs</a>.</p>')
        if shape == 1:
            return f"<p>{text}<br>Thanks,<br>{html_escape(self._author_name(kind, conv))}</p>"
        if shape == 2 and kind == "agent":
            return (f'<p><span class="driftiwyg-mention" data-id="{BOT_USER_ID}">'
                    f"@Driftbot</span> {text}</p>")
        if shape == 3:
            return f"<p>{text}</p><p>{html_escape(rng.choice(lines))}</p>"
        if shape == 4 and kind == "contact":
            return text                 # visitors' messages may lack <p>
        return f"<p>{text}</p>"

    def _author_name(self, kind, conv):
        """Signature name used inside generated bodies."""
        if kind == "contact":
            name = self.contacts[conv["contactId"]]["attributes"].get("name")
            return (name or "A visitor").splitlines()[0]
        return "The Drift team"

    def _gen_attachments(self, rng, n):
        """Attachments spread over messages; the first ones are awkward."""
        pool = [m for cid in self.messages for m in self.messages[cid]]
        if not pool:
            return
        specials = (
            ("q3/report.pdf", "application/pdf", "binary", 150000),
            ("empty.txt", "text/plain", "text", 0),
            ("Übersicht – Zoë 🚀.txt", "text/plain; charset=utf-8", "text", None),
            ("meeting notes final v2.txt", "text/plain", "text", None),
            ("screenshot.png", "image/png", "binary", None),
            ("data.bin", "application/octet-stream", "binary", None),
            ("invoice.csv", "text/csv", "text", None),
        )
        for k in range(n):
            aid = ATTACHMENT_ID_BASE + k * ATTACHMENT_ID_STEP
            if k < len(specials):
                name, mime, kind, size = specials[k]
            else:
                ext = rng.choice((("pdf", "application/pdf", "binary"),
                                  ("txt", "text/plain", "text"),
                                  ("png", "image/png", "binary")))
                name, mime, kind, size = f"file-{k}.{ext[0]}", ext[1], ext[2], None
            if size is None:
                size = rng.randint(1, 200 * 1024)
            msg = pool[0] if k == 0 else rng.choice(pool)
            self.attachments[aid] = {
                "id": aid, "fileName": name, "mimeType": mime, "size": size,
                "sha256": None, "messageId": msg["id"],
                "conversationId": msg["conversationId"], "kind": kind}
            msg.setdefault("attachments", []).append(
                {"id": aid, "fileName": name, "mimeType": mime,
                 "url": f"{self.base_url}/attachments/{aid}/data"})

    def _gen_accounts(self, rng):
        """A handful of ABM accounts (§8)."""
        people = [u for u in self.users if not self.users[u]["bot"]] or [BOT_USER_ID]
        rows = (("Acme Inc", "www.acme.example"), ("Globex", "globex.example"),
                ("Initech", "initech.example"), ("Umbrella Corp", "umbrella.example"),
                ("Zoë GmbH", "zoe.example"), ("Hooli", "hooli.example"))
        for k, (name, domain) in enumerate(rows):
            created = BASE_MS - rng.randint(100, 700) * DAY_MS
            acc = {"ownerId": people[k % len(people)], "name": name,
                   "domain": domain,
                   "accountId": f"{123458 + k}_{domain.removeprefix('www.')}",
                   "customProperties": [
                       {"label": "Seats", "name": "seats",
                        "value": rng.randint(5, 500), "type": "NUMBER"}],
                   "deleted": False, "createDateTime": created,
                   "updateDateTime": created + rng.randint(1, 90) * DAY_MS,
                   "targeted": k % 2 == 0}
            self.accounts[acc["accountId"]] = acc

    # ------------------------------------------------------------------
    # Helpers
    # ------------------------------------------------------------------

    def tick(self):
        """A strictly increasing ms timestamp, never behind seeded data."""
        self._clock = max(int(time.time() * 1000), self._clock + 1)
        return self._clock

    def bot_id(self):
        """The org's bot user, author of API messages without userId."""
        return BOT_USER_ID

    def contact(self, cid):
        """Contact by id or 404."""
        c = self.contacts.get(parse_id(cid))
        if c is None:
            raise not_found(f"contact {cid}")
        return c

    def conversation(self, cid):
        """Conversation by id or 404."""
        c = self.conversations.get(parse_id(cid))
        if c is None:
            raise not_found(f"conversation {cid}")
        return c

    def user(self, uid):
        """User by id or 404."""
        u = self.users.get(parse_id(uid))
        if u is None:
            raise not_found(f"user {uid}")
        return u

    def _touch(self, conv, when=None):
        """Bump a conversation's updatedAt; it moves to the list's top."""
        conv["updatedAt"] = self.tick() if when is None else when
        self._order = None

    def attachment_meta(self, aid):
        """Attachment metadata as the admin view shows it (sha256 filled)."""
        meta = self.attachments.get(parse_id(aid))
        if meta is None:
            raise not_found(f"attachment {aid}")
        if meta["sha256"] is None:
            meta["sha256"] = hashlib.sha256(attachment_bytes(self.seed, meta)).hexdigest()
        return {k: meta[k] for k in ("id", "fileName", "mimeType", "size",
                                     "sha256", "messageId", "conversationId")}

    def attachment_data(self, aid):
        """(mime type, bytes, file name) of an attachment, or 404."""
        meta = self.attachments.get(parse_id(aid))
        if meta is None:
            raise not_found(f"attachment {aid}")
        return meta["mimeType"], attachment_bytes(self.seed, meta), meta["fileName"]

    # ------------------------------------------------------------------
    # Contacts
    # ------------------------------------------------------------------

    def contacts_by_email(self, email):
        """Every contact with this email (case-insensitive), oldest first."""
        want = email.strip().lower()
        found = [c for c in self.contacts.values()
                 if str(c["attributes"].get("email") or "").lower() == want]
        return sorted(found, key=lambda c: (c["createdAt"], c["id"]))

    def contacts_by_external(self, ext_ids):
        """Contacts whose externalId is one of ext_ids, in request order."""
        out = []
        ordered = sorted(self.contacts.values(), key=lambda c: (c["createdAt"], c["id"]))
        for ext in ext_ids:
            for c in ordered:
                have = c["attributes"].get("externalId")
                # externalIds may be numbers in JSON but come as query text
                if have is not None and str(have) == str(ext) and c not in out:
                    out.append(c)
        return out

    def _merge_attrs(self, contact, attrs):
        """PATCH semantics: keys merge, null removes, versions count up."""
        if not isinstance(attrs, dict):
            raise invalid("attributes must be an object")
        a = contact["attributes"]
        for key, value in attrs.items():
            if key in ("id", "createdAt"):
                continue
            if value is None:
                if key == "email":
                    raise invalid("email cannot be removed")
                a.pop(key, None)
                if key == "externalId":
                    a.pop("external_id", None)
                continue
            if key == "email" and not isinstance(value, str):
                raise invalid("email must be a string")
            a[key] = value
            if key == "externalId":
                a["external_id"] = value
        for key in ("_END_USER_VERSION", "_end_user_version", "_calculated_version"):
            a[key] = int(a.get(key) or 0) + 1

    def create_contact(self, attrs):
        """C1: create, or update the contact that owns the externalId."""
        if not isinstance(attrs, dict):
            raise invalid("attributes object required")
        email = attrs.get("email")
        if not isinstance(email, str) or "@" not in email:
            raise invalid("attributes.email is required")
        ext = attrs.get("externalId")
        if ext is not None:
            for c in self.contacts_by_external([ext]):
                self._merge_attrs(c, attrs)
                return c
        elif self.contacts_by_email(email):
            raise ApiError(409, "conflict",
                           f"a contact with email {email} already exists")
        cid = self._next_contact
        self._next_contact += CONTACT_ID_STEP
        now = self.tick()
        a = {"email": email, "externalId": ext}
        if ext is not None:
            a["external_id"] = ext
        a.update({"tags": [], "events": {}, "socialProfiles": {},
                  "start_date": now, "_END_USER_VERSION": 1,
                  "_end_user_version": 1, "_calculated_version": 1})
        for key, value in attrs.items():
            if value is not None and key not in ("id", "createdAt"):
                a[key] = value
        contact = {"id": cid, "createdAt": now, "attributes": a}
        self.contacts[cid] = contact
        return contact

    def update_contact(self, cid, attrs):
        """C5: merge attributes into an existing contact."""
        contact = self.contact(cid)
        self._merge_attrs(contact, attrs)
        return contact

    def delete_contact(self, cid):
        """C7: remove the contact (its conversations keep the dangling id)."""
        contact = self.contact(cid)
        del self.contacts[contact["id"]]
        return contact

    @staticmethod
    def _tag_name(tag):
        """Tags come as {"name":..} objects or bare strings."""
        return tag.get("name") if isinstance(tag, dict) else tag

    def add_tags(self, cid, tags):
        """C11: add tags not yet present; keeps the contact's tag shape."""
        contact = self.contact(cid)
        if not isinstance(tags, list):
            raise invalid("body must be an array of {\"name\": ...}")
        current = contact["attributes"].setdefault("tags", [])
        names = {self._tag_name(t) for t in current}
        for t in tags:
            name = self._tag_name(t)
            if not isinstance(name, str) or not name:
                raise invalid("every tag needs a non-empty name")
            if name not in names:
                color = t.get("color") if isinstance(t, dict) else None
                current.append({"name": name, "color": color or "0960C5"})
                names.add(name)
        return contact

    def remove_tags(self, cid, names):
        """C11: drop the named tags (absent names are not an error)."""
        contact = self.contact(cid)
        if not isinstance(names, list):
            raise invalid("body must be an array of tag names")
        drop = {self._tag_name(n) for n in names}
        tags = contact["attributes"].get("tags") or []
        contact["attributes"]["tags"] = [t for t in tags
                                         if self._tag_name(t) not in drop]
        return contact

    def unsubscribe(self, emails):
        """C8: remember the unsubscribed addresses."""
        if not isinstance(emails, list) or not all(isinstance(e, str) for e in emails):
            raise invalid("body must be an array of email strings")
        for e in emails:
            if e not in self.unsubscribed:
                self.unsubscribed.append(e)

    def timeline_event(self, body):
        """C9: record an event by contactId or externalId; echo it."""
        if not isinstance(body, dict):
            raise invalid("body must be an object")
        event = body.get("event")
        if not isinstance(event, str) or not event:
            raise invalid("event is required")
        if body.get("contactId") is not None:
            contact = self.contact(body["contactId"])
        elif body.get("externalId") is not None:
            found = self.contacts_by_external([body["externalId"]])
            if not found:
                raise not_found(f"contact with externalId {body['externalId']}")
            contact = found[0]
        else:
            raise invalid("contactId or externalId is required")
        created = body.get("createdAt")
        if created is None:
            created = self.tick()
        elif parse_id(created) is None:
            raise invalid("createdAt must be ms since the epoch")
        attrs = body.get("attributes") or {}
        if not isinstance(attrs, dict):
            raise invalid("attributes must be an object")
        rec = {"contactId": contact["id"], "event": event,
               "createdAt": parse_id(created),
               "attributes": {k: str(v) for k, v in attrs.items()}}
        if body.get("externalId") is not None:
            rec["externalId"] = body["externalId"]
        self.timeline.setdefault(str(contact["id"]), []).append(rec)
        return rec

    # ------------------------------------------------------------------
    # Users
    # ------------------------------------------------------------------

    USER_EDITABLE = ("name", "alias", "email", "phone", "locale", "avatarUrl",
                     "availability")

    def update_user(self, uid, fields, restricted=True):
        """U4 (restricted) or an admin edit (any field but id)."""
        user = self.user(uid)
        if not isinstance(fields, dict):
            raise invalid("body must be an object")
        for key, value in fields.items():
            if key == "id":
                raise invalid("id cannot change")
            if restricted:
                if key not in self.USER_EDITABLE:
                    raise invalid(f"field {key} cannot be updated")
                if not isinstance(value, str):
                    raise invalid(f"field {key} must be a string")
                if key == "availability" and value not in ("AVAILABLE", "OFFLINE"):
                    raise invalid("availability must be AVAILABLE or OFFLINE")
        for key, value in fields.items():
            if value is None:
                user.pop(key, None)
            else:
                user[key] = value
        user["updatedAt"] = self.tick()
        return user

    # ------------------------------------------------------------------
    # Conversations and messages
    # ------------------------------------------------------------------

    def conversation_order(self):
        """All conversation ids, updatedAt desc then id desc (cached)."""
        if self._order is None:
            convs = sorted(self.conversations.values(),
                           key=lambda c: (c["updatedAt"], c["id"]), reverse=True)
            self._order = [c["id"] for c in convs]
        return self._order

    def list_conversations(self, statuses):
        """Conversations in list order, optionally filtered by status."""
        out = []
        for cid in self.conversation_order():
            conv = self.conversations[cid]
            if not statuses or conv["status"] in statuses:
                out.append(conv)
        return out

    @staticmethod
    def summary(conv):
        """The list item shape: no participants, tags or playbook."""
        return {"status": conv["status"], "contactId": conv["contactId"],
                "createdAt": conv["createdAt"], "id": conv["id"],
                "inboxId": conv["inboxId"], "updatedAt": conv["updatedAt"]}

    def stats(self):
        """V4: counts by status."""
        counts = {s.upper(): 0 for s in STATUSES}
        for conv in self.conversations.values():
            counts[conv["status"].upper()] = counts.get(conv["status"].upper(), 0) + 1
        return counts

    def new_conversation(self, contact, body, attributes=None, status="open",
                         participants=None, inbox=DEFAULT_INBOX):
        """Create a conversation whose first message comes from the contact."""
        cid = self._next_conv
        self._next_conv += CONV_ID_STEP
        now = self.tick()
        conv = {"id": cid, "status": status, "contactId": contact["id"],
                "inboxId": inbox, "participants": list(participants or []),
                "createdAt": now, "updatedAt": now, "conversationTags": []}
        self.conversations[cid] = conv
        self.messages[cid] = []
        self._order = None
        self.add_message(cid, {"type": "chat", "body": body},
                         author={"type": "contact", "id": contact["id"], "bot": False},
                         attributes=attributes)
        return conv

    def create_conversation(self, body):
        """V3: find the oldest contact with the email (or create one)."""
        if not isinstance(body, dict):
            raise invalid("body must be an object")
        email = body.get("email")
        if not isinstance(email, str) or "@" not in email:
            raise invalid("email is required")
        message = body.get("message")
        if not isinstance(message, dict) or not isinstance(message.get("body"), str):
            raise invalid("message.body is required")
        found = self.contacts_by_email(email)
        contact = found[0] if found else self.create_contact({"email": email})
        attrs = message.get("attributes")
        if attrs is not None and not isinstance(attrs, dict):
            raise invalid("message.attributes must be an object")
        participants = []
        assignee = (attrs or {}).get("autoAssigneeId") or body.get("autoAssigneeId")
        if assignee is not None:
            participants = [self.user(assignee)["id"]]
        return self.new_conversation(contact, message["body"], attrs,
                                     participants=participants)

    def find_message(self, conv_id, msg_id):
        """(index, message) within a conversation, or 404."""
        want = parse_id(msg_id)
        for i, m in enumerate(self.messages.get(conv_id, [])):
            if m["id"] == want:
                return i, m
        raise not_found(f"message {msg_id}")

    def add_message(self, conv_id, body, author=None, attributes=None):
        """M2 and admin add_message: create, or apply an edit."""
        conv = self.conversation(conv_id)
        if not isinstance(body, dict):
            raise invalid("body must be an object")
        mtype = body.get("type")
        if mtype not in ("chat", "private_note", "private_prompt", "edit"):
            raise invalid("type is required: chat, private_note, private_prompt or edit")
        text = body.get("body", "")
        if text is None:
            text = ""
        if not isinstance(text, str):
            raise invalid("body must be a string")
        buttons = body.get("buttons")
        if buttons is not None and not isinstance(buttons, list):
            raise invalid("buttons must be an array")
        if author is None:
            uid = body.get("userId")
            user = self.users.get(BOT_USER_ID) if uid is None else self.users.get(parse_id(uid))
            if user is None:
                raise invalid(f"unknown userId {uid}")
            author = {"type": "user", "id": user["id"], "bot": bool(user.get("bot"))}
        msgs = self.messages[conv["id"]]
        now = self.tick()
        mid = self._next_msg
        self._next_msg += MSG_ID_STEP
        msg = {"id": mid, "orgId": self.org_id, "conversationId": conv["id"],
               "body": text, "author": author, "type": mtype, "createdAt": now}
        if buttons is not None:
            msg["buttons"] = buttons
        if attributes:
            msg["attributes"] = attributes
        if mtype == "edit":
            edit_type = body.get("editType")
            if edit_type not in ("delete", "replace", "replace_body", "replace_buttons"):
                raise invalid("editType must be delete, replace, replace_body or replace_buttons")
            if body.get("editedMessageId") is None:
                raise invalid("editedMessageId is required")
            idx, target = self.find_message(conv["id"], body["editedMessageId"])
            if edit_type == "delete":
                del msgs[idx]
            else:
                if edit_type in ("replace", "replace_body"):
                    target["body"] = text
                if edit_type in ("replace", "replace_buttons"):
                    if buttons:
                        target["buttons"] = buttons
                    else:
                        target.pop("buttons", None)
            msg["editedMessageId"] = target["id"]
            msg["editType"] = edit_type
        else:
            msgs.append(msg)
            self._touch(conv, now)
            return msg
        self._touch(conv)
        return msg

    def edit_message(self, conv_id, msg_id, body):
        """Admin: replace a message body in place (bumps updatedAt)."""
        conv = self.conversation(conv_id)
        _, msg = self.find_message(conv["id"], msg_id)
        if not isinstance(body, str):
            raise invalid("body must be a string")
        msg["body"] = body
        self._touch(conv)
        return msg

    def delete_message(self, conv_id, msg_id, touch=True):
        """Admin: remove a message; returns it. Drift does not always bump
        the conversation's updatedAt for a deletion: touch=False leaves it,
        so only a client that re-lists messages notices."""
        conv = self.conversation(conv_id)
        idx, msg = self.find_message(conv["id"], msg_id)
        del self.messages[conv["id"]][idx]
        self._drop_orphan_attachments()
        if touch:
            self._touch(conv)
        return msg

    def _drop_orphan_attachments(self):
        """Attachments no remaining message refers to are gone (404)."""
        used = {a.get("id") for msgs in self.messages.values() for m in msgs
                for a in m.get("attachments") or []}
        for aid in [a for a in self.attachments if a not in used]:
            del self.attachments[aid]

    def delete_conversation(self, conv_id):
        """Admin: the conversation, its messages and the attachments only
        it held are gone; nothing else's updatedAt moves. Returns it."""
        conv = self.conversation(conv_id)
        del self.conversations[conv["id"]]
        self.messages.pop(conv["id"], None)
        self._order = None
        self._drop_orphan_attachments()
        return conv

    def erase_contact(self, cid):
        """G2 for one contact: the contact, its conversations (messages,
        attachments), its timeline and its unsubscribe entry are gone.
        Returns the ids erased."""
        contact = self.contact(cid)
        email = (contact.get("attributes") or {}).get("email")
        convs = [c for c in self.conversations.values()
                 if c.get("contactId") == contact["id"]]
        for conv in convs:
            del self.conversations[conv["id"]]
            self.messages.pop(conv["id"], None)
        self._order = None
        self._drop_orphan_attachments()
        del self.contacts[contact["id"]]
        self.timeline.pop(str(contact["id"]), None)
        if isinstance(email, str):
            self.unsubscribed = [e for e in self.unsubscribed
                                 if not (isinstance(e, str) and
                                         e.lower() == email.lower())]
        return {"contactId": contact["id"],
                "conversationIds": [c["id"] for c in convs]}

    def gdpr_delete(self, email):
        """G2: erase every contact with that email (case-insensitive)."""
        if not isinstance(email, str) or "@" not in email:
            raise invalid("email is required")
        for c in list(self.contacts.values()):
            e = (c.get("attributes") or {}).get("email")
            if isinstance(e, str) and e.lower() == email.lower():
                self.erase_contact(c["id"])

    def delete_user(self, uid):
        """Admin: the user leaves /users/list; GET answers 404."""
        user = self.user(uid)
        del self.users[user["id"]]
        return user

    def delete_playbook(self, pid):
        """Admin: the playbook leaves /playbooks/list (and its CLPs)."""
        pid = parse_id(pid)
        for k, pb in enumerate(self.playbooks):
            if pb.get("id") == pid:
                del self.playbooks[k]
                self.clps = [c for c in self.clps if c.get("playbookId") != pid]
                return pb
        raise not_found(f"playbook {pid}")

    def transcript(self, conv_id):
        """M3: a plain-text transcript, one block per message."""
        conv = self.conversation(conv_id)
        out = []
        for m in self.messages[conv["id"]]:
            a = m["author"]
            if a["type"] == "contact":
                c = self.contacts.get(a["id"])
                name = ((c or {}).get("attributes", {}).get("name")
                        or (c or {}).get("attributes", {}).get("email") or "Visitor")
            else:
                name = self.users.get(a["id"], {}).get("name", f"User {a['id']}")
            when = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(m["createdAt"] / 1000))
            note = " (private note)" if m["type"] == "private_note" else ""
            out.append(f"[{when} UTC] {name}{note}: {html_to_text(m['body'])}\n")
            for att in m.get("attachments", []):
                out.append(f"    attachment: {att['fileName']} {att['url']}\n")
        return "".join(out)

    # ------------------------------------------------------------------
    # Reports (V5)
    # ------------------------------------------------------------------

    REPORT_PROPS = ("status", "createdAt", "updatedAt", "endUserId",
                    "relatedPlaybookId", "lastAgentId", "numAgentMessages",
                    "numBotMessages", "numEndUserMessages", "firstAgentMessageAt",
                    "timeToAgentResponseMillis", "firstCloseAt",
                    "timeToCloseMillis", "inboxId")

    def _report_row(self, conv):
        """Every report property of one conversation (absent = missing)."""
        msgs = self.messages[conv["id"]]
        agent = [m for m in msgs if m["author"]["type"] == "user"
                 and not m["author"]["bot"]]
        row = {"status": conv["status"], "createdAt": conv["createdAt"],
               "updatedAt": conv["updatedAt"], "endUserId": conv["contactId"],
               "inboxId": conv["inboxId"],
               "numAgentMessages": len(agent),
               "numBotMessages": sum(1 for m in msgs if m["author"]["bot"]),
               "numEndUserMessages": sum(1 for m in msgs
                                         if m["author"]["type"] == "contact")}
        if "relatedPlaybookId" in conv:
            row["relatedPlaybookId"] = conv["relatedPlaybookId"]
        if agent:
            row["lastAgentId"] = agent[-1]["author"]["id"]
            row["firstAgentMessageAt"] = agent[0]["createdAt"]
            first_contact = next((m for m in msgs
                                  if m["author"]["type"] == "contact"), None)
            if first_contact and first_contact["createdAt"] <= agent[0]["createdAt"]:
                row["timeToAgentResponseMillis"] = (agent[0]["createdAt"]
                                                    - first_contact["createdAt"])
        if conv["status"] == "closed":
            row["firstCloseAt"] = conv["updatedAt"]
            row["timeToCloseMillis"] = conv["updatedAt"] - conv["createdAt"]
        return row

    def report(self, body):
        """V5: filter conversations and return positional numeric metrics."""
        if not isinstance(body, dict):
            raise invalid("body must be an object")
        filters = body.get("filters") or []
        metrics = body.get("metrics") or []
        if not isinstance(filters, list) or not isinstance(metrics, list) or not metrics:
            raise invalid("filters must be an array and metrics a non-empty array")
        for m in metrics:
            if m not in self.REPORT_PROPS or m == "status":
                raise invalid(f"metric {m!r} is not a numeric property")
        checks = []
        for f in filters:
            if not isinstance(f, dict) or f.get("property") not in self.REPORT_PROPS:
                raise invalid(f"bad filter {f!r}")
            op, prop, values = f.get("operation"), f["property"], f.get("values")
            if op == "HAS_PROPERTY":
                checks.append(lambda r, p=prop: p in r)
            elif op == "IN":
                if not isinstance(values, list):
                    raise invalid("IN needs a values array")
                want = {str(v).lower() for v in values}
                checks.append(lambda r, p=prop, w=want:
                              p in r and str(r[p]).lower() in w)
            elif op == "BETWEEN":
                if not isinstance(values, list) or len(values) != 2:
                    raise invalid("BETWEEN needs two values")
                lo, hi = parse_time(values[0]), parse_time(values[1], True)
                checks.append(lambda r, p=prop, lo=lo, hi=hi:
                              isinstance(r.get(p), int) and lo <= r[p] <= hi)
            else:
                raise invalid(f"unsupported operation {op!r}")
        data = []
        for cid in self.conversation_order():
            row = self._report_row(self.conversations[cid])
            if all(check(row) for check in checks):
                data.append({"conversationId": cid,
                             "metrics": [row.get(m, "NaN") for m in metrics]})
        return {"count": len(data), "data": data}

    # ------------------------------------------------------------------
    # Accounts
    # ------------------------------------------------------------------

    def account(self, account_id):
        """Account by id (deleted ones too) or 404."""
        acc = self.accounts.get(account_id)
        if acc is None:
            raise not_found(f"account {account_id}")
        return acc

    def _check_domain(self, domain, skip=None):
        """Domains are unique among live accounts."""
        if not isinstance(domain, str) or not domain:
            raise invalid("domain must be a non-empty string")
        bare = domain.lower().removeprefix("www.")
        for acc in self.accounts.values():
            if acc is not skip and not acc["deleted"] and \
                    acc["domain"].lower().removeprefix("www.") == bare:
                raise ApiError(409, "conflict", f"domain {domain} already used")

    def create_account(self, body):
        """A1: ownerId required, domain unique."""
        if not isinstance(body, dict):
            raise invalid("body must be an object")
        if parse_id(body.get("ownerId")) is None:
            raise invalid("ownerId is required")
        self._check_domain(body.get("domain"))
        now = self.tick()
        self._next_account += 1
        acc = {"ownerId": parse_id(body["ownerId"]),
               "name": body.get("name") or body["domain"],
               "domain": body["domain"],
               "accountId": f"{self._next_account}_{body['domain'].lower().removeprefix('www.')}",
               "customProperties": body.get("customProperties") or [],
               "deleted": False, "createDateTime": now, "updateDateTime": now,
               "targeted": bool(body.get("targeted", False))}
        self.accounts[acc["accountId"]] = acc
        return acc

    def update_account(self, body):
        """A4: accountId and ownerId required; only known fields change."""
        if not isinstance(body, dict):
            raise invalid("body must be an object")
        if not isinstance(body.get("accountId"), str):
            raise invalid("accountId is required")
        if parse_id(body.get("ownerId")) is None:
            raise invalid("ownerId is required")
        acc = self.account(body["accountId"])
        if "domain" in body:
            self._check_domain(body["domain"], skip=acc)
        for key in ("name", "domain", "customProperties", "targeted"):
            if key in body:
                acc[key] = body[key]
        acc["ownerId"] = parse_id(body["ownerId"])
        acc["updateDateTime"] = self.tick()
        return acc

    def delete_account(self, account_id):
        """A5: soft delete, GET keeps working."""
        acc = self.account(account_id)
        acc["deleted"] = True
        acc["updateDateTime"] = self.tick()
        return acc

    def live_accounts(self):
        """Accounts the list shows: not deleted, oldest first."""
        return sorted((a for a in self.accounts.values() if not a["deleted"]),
                      key=lambda a: (a["createDateTime"], a["accountId"]))

    # ------------------------------------------------------------------
    # Admin view and admin-only changes
    # ------------------------------------------------------------------

    def dump(self):
        """Everything, in the same shapes the API serves."""
        return {
            "orgId": self.org_id,
            "users": list(self.users.values()),
            "contacts": list(self.contacts.values()),
            "conversations": [self.conversations[c] for c in self.conversation_order()],
            "messages": {str(c): self.messages[c] for c in self.conversation_order()},
            "attachments": {str(a): self.attachment_meta(a) for a in self.attachments},
            "playbooks": self.playbooks,
            "clps": self.clps,
            "accounts": list(self.accounts.values()),
            "attributes": self.attributes,
            "timeline": self.timeline,
            "unsubscribed": self.unsubscribed,
        }

    def admin_add_attachment(self, msg, spec):
        """Attach runtime bytes to a message (admin add_message)."""
        if isinstance(spec, dict) and "id" in spec:
            # The same attachment once more (Drift repeats forwarded files).
            meta = self.attachments.get(parse_id(spec["id"]))
            if meta is None:
                raise not_found(f"attachment {spec['id']}")
            msg.setdefault("attachments", []).append(
                {"id": meta["id"], "fileName": meta["fileName"],
                 "mimeType": meta["mimeType"],
                 "url": f"{self.base_url}/attachments/{meta['id']}/data"})
            return
        if not isinstance(spec, dict) or not isinstance(spec.get("fileName"), str):
            raise invalid("attachment needs fileName")
        if "size" in spec:
            # Generated from the seed on every download, like the seeded
            # ones: a large file costs no memory while it waits.
            size = spec["size"]
            if isinstance(size, bool) or not isinstance(size, int) or \
                    not 0 <= size <= 1 << 30:
                raise invalid("size must be 0..2**30")
            aid = self._next_attachment
            self._next_attachment += ATTACHMENT_ID_STEP
            mime = spec.get("mimeType") or "application/octet-stream"
            self.attachments[aid] = {
                "id": aid, "fileName": spec["fileName"], "mimeType": mime,
                "size": size, "sha256": None, "messageId": msg["id"],
                "conversationId": msg["conversationId"], "kind": "binary"}
            msg.setdefault("attachments", []).append(
                {"id": aid, "fileName": spec["fileName"], "mimeType": mime,
                 "url": f"{self.base_url}/attachments/{aid}/data"})
            return
        if "base64" in spec:
            data = base64.b64decode(spec["base64"])
        else:
            data = str(spec.get("text", "")).encode()
        aid = self._next_attachment
        self._next_attachment += ATTACHMENT_ID_STEP
        mime = spec.get("mimeType") or "application/octet-stream"
        self.attachments[aid] = {
            "id": aid, "fileName": spec["fileName"], "mimeType": mime,
            "size": len(data), "sha256": hashlib.sha256(data).hexdigest(),
            "messageId": msg["id"], "conversationId": msg["conversationId"],
            "kind": "runtime", "data": data}
        msg.setdefault("attachments", []).append(
            {"id": aid, "fileName": spec["fileName"], "mimeType": mime,
             "url": f"{self.base_url}/attachments/{aid}/data"})

    def set_status(self, conv_id, status):
        """Admin: change a conversation's status (bumps updatedAt)."""
        if status not in STATUSES:
            raise invalid(f"status must be one of {', '.join(STATUSES)}")
        conv = self.conversation(conv_id)
        conv["status"] = status
        self._touch(conv)
        return conv
