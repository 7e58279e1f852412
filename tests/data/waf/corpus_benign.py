# ruff: noqa: E501  (payloads are kept verbatim, one per line)
"""Benign requests: the traffic a shop, a blog, an API and their clients really send.

Browser page and asset loads with analytics and consent cookies, searches typed by people (in
many languages, with punctuation), form posts with names like O'Brien, JSON APIs with nested
documents, GraphQL, webhooks, OAuth redirects, uploads, health checks and CORS preflights.
A few requests carry text that *looks* technical on purpose (a developer forum post quoting
SQL, a CMS post with HTML, generated passwords with symbols): real sites get those, and they
are where WAFs produce false positives. Nothing here was selected by running an engine.
"""

from __future__ import annotations

import base64
import random
from typing import Any

from corpus_common import (
    BROWSERS,
    CLIENTS,
    HOSTS,
    UA,
    api_headers,
    browser_headers,
    client_ip,
    form,
    jdump,
    multipart,
    qs,
    record,
)

SEARCHES = [
    "red running shoes",
    "iphone 15 pro max case",
    "men's winter jacket",
    "O'Reilly books",
    "50% off sale",
    "café crème",
    "東京 ホテル 安い",
    "wireless headphones under $100",
    "where is my order #12345",
    "select a plan",
    "drop shipping",
    "union jack flag",
    "1/2 inch copper pipe",
    "AT&T prepaid",
    "what's new",
    '"exact phrase" search',
    "best laptop < $1000",
    "C++ primer 5th edition",
    "C# vs Java",
    "rock & roll t-shirt",
    "size 10.5 wide",
    "Zürich Hauptbahnhof",
    "crème brûlée recipe",
    "naïve bayes",
    "Ωmega watch",
    "coffee grinder - burr",
    "kids' bikes 20\"",
    "return policy?",
    "how to reset my password",
    "gift card balance",
    "4K TV 55 inch",
    "organic green tea (loose leaf)",
    "Ñandú plush toy",
    "пальто женское",
    "حقيبة ظهر",
    "jeans 32x34",
    "usb-c to hdmi",
    "dog food: grain free",
    "Where can I find the user manual for model X-200?",
    "tom & jerry dvd",
    "100% cotton sheets",
    "email me when back in stock",
    "summer dress floral",
    "sony wh-1000xm5",
    "ps5 + controller",
    "vitamin d3 1000iu",
    "the lord of the rings",
    "A/B testing book",
    "delete account",
    "update billing address",
    "order by date",
    "from paris to london train",
    "script writing course",
    "alert sound for phone",
    "select comfort mattress",
    "drop earrings gold",
    "insert molding",
    "table lamp with usb port",
    "cat tree large",
    "who am i quiz",
    "ping pong table",
    "ls 460 parts",
]
NAMES = [
    "Alice Johnson",
    "Bob O'Brien",
    "José García",
    "Zoë Saldaña",
    "李小龙",
    "Mary-Jane Watson",
    "Siobhán Ní Bhriain",
    "Jean-Luc Picard",
    "Åsa Ödegård",
    "D'Angelo Russell",
    "Ngọc Anh",
    "Fatima Al-Zahra",
    "Renée Dubois",
    "Łukasz Żółć",
    "Oğuz Kağan",
    "Anna Schmidt",
]
STREETS = [
    "12 Main St.",
    "Flat 3, 45 Baker Street",
    "Rue de Rivoli 101",
    "1600 Amphitheatre Pkwy",
    "Hauptstraße 5a",
    "221B Baker St",
    "Calle Mayor, 7 - 2ºB",
    "5-2-1 Ginza, Chuo-ku",
]
CITIES = ["Springfield", "London", "Paris", "Mountain View", "Berlin", "Madrid", "Tokyo", "Zürich"]
MESSAGES = [
    "Hi, I ordered a jacket last week (order #88231) and it still hasn't shipped. Can you check?",
    "Love the new design! One small thing: the search box is hard to see on mobile.",
    "Is the 2-year warranty valid in Canada & the US? Thanks in advance.",
    "Please cancel my subscription -- I'm moving abroad next month.",
    "The product page says 'in stock' but checkout says it's unavailable. Which is right?",
    "Great service. 5/5 would recommend :)",
    "Can I change the delivery address? New one: Flat 2, 10 High St, Oxford OX1 4AB.",
    "I'd like a refund for item #4471 (wrong size; I need a 42, got a 44).",
    "Bonjour, est-ce que vous livrez en Belgique ? Merci !",
    "The link in your email (https://shop.example.com/account/verify?token=abc) didn't work.",
    "Quick question: do you ship to P.O. boxes?",
    "My kid's name is on the gift card — can it be transferred to my account?",
    "We'd like to order 250 units for our team event; is there a bulk discount?",
    "Hello!\nI have two questions:\n1) price of the blue model\n2) delivery time to Vienna\nThanks",
    "Select the size from the drop-down, then click 'Add to cart' — nothing happens on Safari.",
    "I tried to update my email and got error code 500. Please help.",
    "Order from 03/12 arrived damaged; photos attached in the next message.",
    "Your FAQ says 'no returns after 30 days' but my order is from 28 days ago, right?",
    "Please don't call me between 9-5, email only. Cheers, Sam",
    "Dear team, the invoice total ($149.99) doesn't match the cart ($139.99).",
]
COMMENTS = [
    "This recipe is amazing! I used 2 cups of flour instead of 1 1/2 and it worked fine.",
    "Can't wait for part 2 :D",
    "I disagree with point #3 -- performance matters more than you think.",
    "Thanks for sharing. Where did you buy the lens? (the 35mm f/1.8)",
    "Tried this on Ubuntu 22.04 and it works. On Windows I had to run it as admin.",
    "Great write-up! Small typo in the second paragraph: 'there' → 'their'.",
    "Does this also apply to the EU version? My model # is EU-220.",
    "I've been waiting for this feature for years!!! 🎉🎉",
    "Nice photos. The one from the bridge at sunset is my favourite.",
    "Would love a follow-up post on testing & deployment.",
    "Honestly the 'old' way was simpler, but I see why you changed it.",
    'Quote from the article: "less is more" — couldn\'t agree more.',
]
TECH_POSTS = [  # the kind of text a developer forum or a docs feedback form receives
    "Use a prepared statement: `SELECT name FROM users WHERE id = ?` instead of string "
    "concatenation, otherwise you get SQL injection.",
    "To list files run `ls -la /var/log` and then `tail -f syslog`.",
    "In your template write <b>bold</b> or <em>italic</em>; script tags are stripped.",
]
CMS_HTML = [
    "<p>Our <strong>summer sale</strong> starts Monday!</p><ul><li>Shoes</li><li>Bags</li></ul>"
    '<p>See <a href="https://shop.example.com/sale">all offers</a>.</p>',
    "<h2>Opening hours</h2><p>Mon&ndash;Fri 9:00&ndash;18:00<br>Sat 10:00&ndash;14:00</p>",
    '<p><img src="/media/2024/01/team.jpg" alt="Our team at the office" width="600"></p>',
]
PASSWORDS = [
    "S3cure!Passw0rd",
    "correct-horse-battery-staple",
    "hunter2hunter2",
    "Tr0ub4dor&3",
    "x7#Kq!9z$Lm2",
    "6f'G]2q\"wP;vR",
    "P@ssw0rd2024!",
    "blue-sky_42",
]
PRODUCTS = [
    "running-shoe-x200",
    "leather-wallet",
    "usb-c-hub-7in1",
    "espresso-machine-pro",
    "yoga-mat",
    "wool-scarf-grey",
    "mechanical-keyboard-tkl",
    "water-bottle-1l",
    "desk-lamp-led",
    "backpack-25l",
]
CATEGORIES = [
    "shoes",
    "electronics",
    "home-kitchen",
    "books",
    "toys",
    "garden",
    "sports",
    "beauty",
    "men/jackets",
    "women/dresses",
]
ASSETS = [
    "/static/js/app.4f3c2a.js",
    "/static/css/main.9b1e.css",
    "/images/logo.svg",
    "/favicon.ico",
    "/fonts/inter-var.woff2",
    "/static/js/vendor.chunk.31ab.js",
    "/images/products/yoga-mat-800w.webp",
    "/manifest.json",
    "/robots.txt",
    "/sitemap.xml",
    "/apple-touch-icon.png",
    "/static/media/hero@2x.jpg",
]
PAGES = [
    "/",
    "/about",
    "/contact",
    "/blog",
    "/blog/2024/01/new-year-new-look",
    "/faq",
    "/careers",
    "/products",
    "/cart",
    "/checkout",
    "/account",
    "/account/orders",
    "/help/shipping-returns",
    "/privacy",
    "/terms",
    "/blog/tags/recipes",
    "/docs/getting-started",
    "/pricing",
    "/login",
    "/register",
]


def _cookie(rng: random.Random, n: int) -> str:
    parts = [
        f"_ga=GA1.2.{rng.randint(10**8, 10**9)}.{1700000000 + n}",
        f"_gid=GA1.2.{rng.randint(10**8, 10**9)}.{1705000000 + n}",
    ]
    if n % 2:
        parts.append(f"session={base64.urlsafe_b64encode(rng.randbytes(24)).decode().rstrip('=')}")
    if n % 3 == 0:
        parts.append(
            "cookieyes-consent=consentid:Yk1QZ2x5,consent:yes,action:yes,"
            "necessary:yes,functional:yes,analytics:no,performance:no"
        )
    if n % 5 == 0:
        parts.append(
            "OptanonConsent=isGpcEnabled=0&datestamp=Mon+Jan+15+2024+10%3A12%3A01"
            "+GMT%2B0100&version=202311.1.0&groups=C0001%3A1%2CC0002%3A0"
        )
    if n % 7 == 0:
        parts.append(f"csrftoken={rng.randbytes(16).hex()}")
    if n % 4 == 0:
        parts.append("lang=en-US; theme=dark")
    return "; ".join(parts)


def _jwt(rng: random.Random) -> str:
    def seg(obj: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(jdump(obj).encode()).decode().rstrip("=")

    header = seg({"alg": "RS256", "typ": "JWT", "kid": "k1"})
    payload = seg(
        {
            "sub": str(rng.randint(1000, 99999)),
            "iat": 1705300000,
            "exp": 1705303600,
            "scope": "read:orders write:profile",
            "iss": "https://auth.example.com/",
        }
    )
    return f"{header}.{payload}.{base64.urlsafe_b64encode(rng.randbytes(64)).decode().rstrip('=')}"


def _uuid(rng: random.Random) -> str:
    h = rng.randbytes(16).hex()
    return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-a{h[17:20]}-{h[20:32]}"


class _Benign:
    def __init__(self) -> None:
        self.rng = random.Random(20240115)
        self.records: list[dict[str, Any]] = []
        self.counts: dict[str, int] = {}

    def add(self, category: str, method: str, path: str, **kw: Any) -> None:
        self.counts[category] = self.counts.get(category, 0) + 1
        rid = f"benign-{category}-{self.counts[category]:03d}"
        kw.setdefault("client_ip", client_ip(len(self.records), attack=False))
        self.records.append(record(rid, "benign", category, method, path, **kw))

    def browse(self) -> None:
        rng = self.rng
        for i, page in enumerate(PAGES * 2):
            ua = BROWSERS[i % len(BROWSERS)]
            host = HOSTS[i % 3]
            ref = f"https://{host}{PAGES[(i + 3) % len(PAGES)]}" if i % 3 else None
            cookie = _cookie(rng, i) if i % 4 else None
            self.add(
                "page",
                "GET",
                page,
                headers=browser_headers(host, ua, i, referer=ref, cookie=cookie),
            )
        for i, asset in enumerate(ASSETS * 2):
            host = HOSTS[i % 3]
            accept = "image/avif,image/webp,*/*" if asset.startswith("/images") else "*/*"
            self.add(
                "asset",
                "GET",
                asset,
                query="v=3" if i % 5 == 0 else "",
                headers=browser_headers(
                    host,
                    BROWSERS[(i + 2) % 8],
                    i,
                    referer=f"https://{host}/",
                    accept=accept,
                    cookie=_cookie(rng, i + 50),
                ),
            )
        for i, term in enumerate(SEARCHES):
            host = HOSTS[i % 2]
            extra = [("q", term)]
            if i % 3 == 0:
                extra.append(("page", str(i % 5 + 1)))
            if i % 4 == 1:
                extra.append(("sort", ["price_asc", "-created_at", "relevance", "rating"][i % 4]))
            if i % 6 == 2:
                extra.append(("filter[brand]", ["acme", "globex", "initech"][i % 3]))
            self.add(
                "search",
                "GET",
                "/search",
                query=qs(extra),
                headers=browser_headers(
                    host,
                    BROWSERS[i % 8],
                    i,
                    referer=f"https://{host}/",
                    cookie=_cookie(rng, i + 100),
                ),
            )
        for i, cat in enumerate(CATEGORIES * 2):
            query = (
                qs(
                    [
                        ("page", str(i % 4 + 1)),
                        ("per_page", "24"),
                        ("min_price", "10"),
                        ("max_price", str(50 + i * 10)),
                    ]
                )
                if i % 2
                else ""
            )
            self.add(
                "catalog",
                "GET",
                f"/c/{cat}",
                query=query,
                headers=browser_headers(HOSTS[0], BROWSERS[i % 8], i, cookie=_cookie(rng, i + 200)),
            )
        for i, product in enumerate(PRODUCTS * 2):
            self.add(
                "product",
                "GET",
                f"/p/{product}",
                query=qs(
                    [
                        ("variant", str(i % 3)),
                        ("utm_source", "newsletter"),
                        ("utm_medium", "email"),
                        ("utm_campaign", "jan-sale"),
                    ]
                )
                if i % 3 == 0
                else "",
                headers=browser_headers(
                    HOSTS[0],
                    BROWSERS[(i + 1) % 8],
                    i,
                    referer="https://www.google.com/",
                    cookie=_cookie(rng, i + 300),
                ),
            )

    def forms(self) -> None:
        rng = self.rng
        for i, pw in enumerate(PASSWORDS):
            user = ["alice", "bob.obrien@example.com", "jgarcia", "zoe_s"][i % 4]
            body = form(
                [
                    ("csrf_token", rng.randbytes(16).hex()),
                    ("username", user),
                    ("password", pw),
                    ("remember_me", "on"),
                ]
            )
            self.add(
                "login",
                "POST",
                "/login",
                body=body,
                content_type="application/x-www-form-urlencoded",
                headers=browser_headers(
                    HOSTS[3],
                    BROWSERS[i % 8],
                    i,
                    referer=f"https://{HOSTS[3]}/login",
                    cookie=_cookie(rng, i + 400),
                ),
            )
        for i, name in enumerate(NAMES):
            first, _, last = name.partition(" ")
            body = form(
                [
                    ("first_name", first),
                    ("last_name", last),
                    ("email", f"user{i}@example.com"),
                    ("phone", ["+1 (555) 123-4567", "+44 20 7946 0958", "030 1234567"][i % 3]),
                    ("street", STREETS[i % len(STREETS)]),
                    ("city", CITIES[i % len(CITIES)]),
                    ("zip", ["90210", "SW1A 1AA", "75001", "10115"][i % 4]),
                    ("newsletter", "yes" if i % 2 else "no"),
                    ("terms", "accepted"),
                ]
            )
            self.add(
                "signup",
                "POST",
                "/register",
                body=body,
                content_type="application/x-www-form-urlencoded",
                headers=browser_headers(
                    HOSTS[0], BROWSERS[(i + 3) % 8], i, referer=f"https://{HOSTS[0]}/register"
                ),
            )
        for i, msg in enumerate(MESSAGES):
            body = form(
                [
                    ("name", NAMES[i % len(NAMES)]),
                    ("email", f"c{i}@example.net"),
                    ("subject", ["Order question", "Feedback", "Returns", "Billing"][i % 4]),
                    ("message", msg),
                ]
            )
            self.add(
                "contact",
                "POST",
                "/contact",
                body=body,
                content_type="application/x-www-form-urlencoded",
                headers=browser_headers(
                    HOSTS[0],
                    BROWSERS[i % 8],
                    i,
                    referer=f"https://{HOSTS[0]}/contact",
                    cookie=_cookie(rng, i + 500),
                ),
            )
        for i, text in enumerate(COMMENTS + TECH_POSTS):
            body = form(
                [
                    ("post_id", str(1200 + i)),
                    ("author", NAMES[(i + 5) % len(NAMES)]),
                    ("comment", text),
                ]
            )
            self.add(
                "comment",
                "POST",
                "/blog/comments",
                body=body,
                content_type="application/x-www-form-urlencoded",
                headers=browser_headers(
                    HOSTS[4],
                    BROWSERS[(i + 4) % 8],
                    i,
                    referer=f"https://{HOSTS[4]}/blog/post-{1200 + i}",
                    cookie=_cookie(rng, i + 600),
                ),
            )

    def apis(self) -> None:
        rng = self.rng
        for i in range(30):
            uid = rng.randint(1000, 99999)
            token = _jwt(rng)
            ua = CLIENTS[i % len(CLIENTS)]
            kind = i % 6
            host = HOSTS[2]
            if kind == 0:
                self.add(
                    "api", "GET", f"/api/v1/users/{uid}", headers=api_headers(host, ua, token=token)
                )
            elif kind == 1:
                doc = {
                    "display_name": NAMES[i % len(NAMES)],
                    "bio": COMMENTS[i % len(COMMENTS)],
                    "timezone": "Europe/Berlin",
                    "notifications": {"email": True, "sms": False},
                }
                self.add(
                    "api",
                    "PATCH",
                    f"/api/v1/users/{uid}",
                    body=jdump(doc),
                    content_type="application/json",
                    headers=api_headers(host, ua, token=token),
                )
            elif kind == 2:
                doc = {
                    "items": [
                        {
                            "sku": PRODUCTS[j % 10],
                            "qty": j % 3 + 1,
                            "price": round(9.99 + j * 5.5, 2),
                        }
                        for j in range(i % 4 + 1)
                    ],
                    "shipping": {
                        "name": NAMES[i % len(NAMES)],
                        "street": STREETS[i % 8],
                        "city": CITIES[i % 8],
                        "country": "DE",
                    },
                    "coupon": None,
                    "note": MESSAGES[i % len(MESSAGES)][:60],
                    "idempotency_key": _uuid(rng),
                }
                self.add(
                    "api",
                    "POST",
                    "/api/v1/orders",
                    body=jdump(doc),
                    content_type="application/json",
                    headers=api_headers(host, ua, token=token),
                )
            elif kind == 3:
                self.add(
                    "api",
                    "DELETE",
                    f"/api/v1/sessions/{_uuid(rng)}",
                    headers=api_headers(host, ua, token=token),
                )
            elif kind == 4:
                doc = {
                    "theme": "dark",
                    "language": "de-DE",
                    "currency": "EUR",
                    "shortcuts": {"search": "ctrl+k", "save": "ctrl+s"},
                }
                self.add(
                    "api",
                    "PUT",
                    "/api/v1/settings",
                    body=jdump(doc),
                    content_type="application/json",
                    headers=api_headers(host, ua, token=token),
                )
            else:
                cursor = base64.b64encode(
                    jdump({"id": uid, "ts": 1705300000 + i}).encode()
                ).decode()
                self.add(
                    "api",
                    "GET",
                    "/api/v1/orders",
                    query=qs(
                        [
                            ("cursor", cursor),
                            ("limit", "50"),
                            ("status", "shipped,delivered"),
                            ("from", "2024-01-01T00:00:00Z"),
                        ]
                    ),
                    headers=api_headers(host, ua, token=token),
                )
        queries = [
            "query { viewer { id name email orders(first: 10) { edges { node { id total } } } } }",
            "query Product($slug: String!) { product(slug: $slug) { id title price { amount currency } images { url alt } } }",
            "mutation AddToCart($input: CartLineInput!) { cartLinesAdd(input: $input) { cart { id totalQuantity } userErrors { field message } } }",
            "query Search($q: String!, $after: String) { search(query: $q, first: 20, after: $after) { nodes { ... on Product { id title } } pageInfo { hasNextPage endCursor } } }",
            'mutation { updateProfile(input: {displayName: "Zoë", bio: "Coffee & code"}) { user { id } } }',
            "{ __typename }",
        ]
        for i, q in enumerate(queries * 2):
            doc = {
                "query": q,
                "variables": {
                    "slug": PRODUCTS[i % 10],
                    "q": SEARCHES[i],
                    "input": {"merchandiseId": f"gid://shop/Variant/{4400 + i}", "quantity": 1},
                },
                "operationName": None,
            }
            self.add(
                "graphql",
                "POST",
                "/graphql",
                body=jdump(doc),
                content_type="application/json",
                headers=api_headers(
                    HOSTS[2], ["axios", "okhttp", "ios_app"][i % 3], token=_jwt(rng)
                ),
            )
        for i in range(8):
            event = {
                "id": f"evt_{rng.randbytes(12).hex()}",
                "object": "event",
                "type": [
                    "payment_intent.succeeded",
                    "invoice.paid",
                    "charge.refunded",
                    "customer.subscription.updated",
                ][i % 4],
                "created": 1705300000 + i * 60,
                "livemode": False,
                "data": {
                    "object": {
                        "id": f"pi_{rng.randbytes(10).hex()}",
                        "amount": 1999 + i,
                        "currency": "eur",
                        "metadata": {"order_id": str(88000 + i)},
                        "description": f"Order #{88000 + i} - {PRODUCTS[i]}",
                    }
                },
            }
            self.add(
                "webhook",
                "POST",
                "/webhooks/stripe",
                body=jdump(event),
                content_type="application/json",
                headers=[
                    ("Host", HOSTS[2]),
                    ("User-Agent", UA["stripe"]),
                    ("Accept", "*/*; q=0.5, application/xml"),
                    ("Stripe-Signature", f"t=1705300000,v1={rng.randbytes(32).hex()}"),
                ],
            )
        commits = [
            "Fix typo in README",
            "Add index on users.email to speed up login query",
            "Bump lodash from 4.17.20 to 4.17.21",
            "Refactor: extract select() helper",
            "Merge pull request #412 from feature/drop-python-3.7",
            "Update CI: run tests on push & pull_request",
        ]
        for i, msg in enumerate(commits):
            doc = {
                "ref": "refs/heads/main",
                "before": rng.randbytes(20).hex(),
                "after": rng.randbytes(20).hex(),
                "repository": {"full_name": "example/shop", "private": True},
                "pusher": {"name": "alice", "email": "alice@example.com"},
                "commits": [
                    {
                        "id": rng.randbytes(20).hex(),
                        "message": msg,
                        "author": {"name": NAMES[i], "email": f"dev{i}@example.com"},
                        "modified": ["src/app.py", "README.md"],
                    }
                ],
            }
            self.add(
                "webhook",
                "POST",
                "/hooks/github",
                body=jdump(doc),
                content_type="application/json",
                headers=[
                    ("Host", HOSTS[2]),
                    ("User-Agent", UA["github"]),
                    ("Accept", "*/*"),
                    ("X-GitHub-Event", "push"),
                    ("X-GitHub-Delivery", _uuid(rng)),
                    ("X-Hub-Signature-256", f"sha256={rng.randbytes(32).hex()}"),
                ],
            )
        for i in range(10):
            events = [
                {
                    "event": ["page_view", "add_to_cart", "scroll", "click"][j % 4],
                    "ts": 1705300000123 + j,
                    "url": f"https://{HOSTS[0]}{PAGES[j]}",
                    "props": {"depth": j * 10, "label": SEARCHES[(i + j) % len(SEARCHES)]},
                }
                for j in range(i % 5 + 1)
            ]
            self.add(
                "telemetry",
                "POST",
                "/collect",
                body=jdump({"events": events, "anon_id": _uuid(rng)}),
                content_type="application/json",
                headers=browser_headers(
                    HOSTS[0], BROWSERS[i % 8], i, referer=f"https://{HOSTS[0]}/", accept="*/*"
                ),
            )
        for i, text in enumerate(CMS_HTML):
            doc = {
                "title": ["Summer sale", "Opening hours", "Meet the team"][i],
                "body_html": text,
                "status": "draft",
                "tags": ["news", "shop"],
            }
            self.add(
                "cms",
                "POST",
                "/admin/api/posts",
                body=jdump(doc),
                content_type="application/json",
                headers=browser_headers(
                    HOSTS[5],
                    BROWSERS[i % 8],
                    i,
                    accept="application/json",
                    referer=f"https://{HOSTS[5]}/admin/posts/new",
                    cookie=_cookie(rng, 700 + i),
                ),
            )

    def misc(self) -> None:
        rng = self.rng
        for i in range(6):
            state = rng.randbytes(12).hex()
            challenge = base64.urlsafe_b64encode(rng.randbytes(32)).decode().rstrip("=")
            query = qs(
                [
                    ("response_type", "code"),
                    ("client_id", f"web-{i}"),
                    ("redirect_uri", f"https://{HOSTS[3]}/auth/callback"),
                    ("scope", "openid profile email offline_access"),
                    ("state", state),
                    ("code_challenge", challenge),
                    ("code_challenge_method", "S256"),
                ]
            )
            self.add(
                "oauth",
                "GET",
                "/oauth/authorize",
                query=query,
                headers=browser_headers(
                    "auth.example.com", BROWSERS[i % 8], i, referer=f"https://{HOSTS[3]}/login"
                ),
            )
            self.add(
                "oauth",
                "POST",
                "/oauth/token",
                body=form(
                    [
                        ("grant_type", "authorization_code"),
                        ("code", rng.randbytes(20).hex()),
                        ("redirect_uri", f"https://{HOSTS[3]}/auth/callback"),
                        ("code_verifier", rng.randbytes(32).hex()),
                    ]
                ),
                content_type="application/x-www-form-urlencoded",
                headers=api_headers("auth.example.com", CLIENTS[i % 10]),
            )
        for i in range(6):
            self.add(
                "preflight",
                "OPTIONS",
                f"/api/v1/{['orders', 'users/me', 'cart'][i % 3]}",
                headers=[
                    ("Host", HOSTS[2]),
                    ("User-Agent", UA[BROWSERS[i % 8]]),
                    ("Accept", "*/*"),
                    ("Origin", f"https://{HOSTS[3]}"),
                    ("Access-Control-Request-Method", ["POST", "PATCH", "DELETE"][i % 3]),
                    ("Access-Control-Request-Headers", "authorization,content-type"),
                ],
            )
        probes = [
            ("/healthz", "kube"),
            ("/readyz", "kube"),
            ("/metrics", "prometheus"),
            ("/healthz", "kube"),
            ("/api/health", "curl"),
            ("/metrics", "prometheus"),
        ]
        for path, ua in probes:
            self.add(
                "health",
                "GET",
                path,
                headers=[("Host", "10.0.3.12:8080"), ("User-Agent", UA[ua]), ("Accept", "*/*")],
            )
        for i, page in enumerate(PAGES[:8]):
            self.add(
                "crawler",
                "GET",
                page,
                headers=[
                    ("Host", HOSTS[i % 2]),
                    ("User-Agent", UA[["googlebot", "bingbot"][i % 2]]),
                    ("Accept", "text/html,*/*;q=0.8"),
                    ("Accept-Encoding", "gzip, deflate, br"),
                    ("From", "googlebot(at)googlebot.com"),
                ],
            )
        for i in range(6):
            self.add(
                "head",
                "HEAD",
                ASSETS[i],
                headers=api_headers(HOSTS[0], CLIENTS[i % 10], accept="*/*"),
            )
        png = (
            b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x10\x00\x00\x00\x10\x08\x06"
            b"\x00\x00\x00\x1f\xf3\xffa"
            + bytes(rng.randbytes(200))
            + b"\x00\x00\x00\x00IEND\xaeB`\x82"
        )
        uploads = [
            [("avatar", "me.png", "image/png", png), ("crop", None, "", b"0,0,16,16")],
            [
                (
                    "document",
                    "Q4 report (final).pdf",
                    "application/pdf",
                    b"%PDF-1.7\n" + rng.randbytes(180),
                ),
                ("description", None, "", "Quarterly numbers — please review by Friday".encode()),
            ],
            [
                (
                    "file",
                    "contacts.csv",
                    "text/csv",
                    "name,email,phone\nAlice,alice@example.com,+1 555 0100\nJosé,jose@example.com,+34 600 000 000\n".encode(),
                ),
                ("has_header", None, "", b"true"),
            ],
            [
                (
                    "photos[]",
                    "IMG_2041.JPG",
                    "image/jpeg",
                    b"\xff\xd8\xff\xe0\x00\x10JFIF" + rng.randbytes(150),
                ),
                (
                    "photos[]",
                    "IMG_2042.JPG",
                    "image/jpeg",
                    b"\xff\xd8\xff\xe1" + rng.randbytes(150),
                ),
                ("album", None, "", "Holiday 2023 🌴".encode()),
            ],
            [
                (
                    "resume",
                    "cv_anna_schmidt.docx",
                    "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
                    b"PK\x03\x04" + rng.randbytes(160),
                ),
                ("cover_letter", None, "", MESSAGES[12].encode()),
                ("position", None, "", b"Backend Engineer"),
            ],
            [("attachment", "notes.txt", "text/plain", COMMENTS[4].encode())],
        ]
        for i, parts in enumerate(uploads):
            boundary = f"----WebKitFormBoundary{rng.randbytes(8).hex()}"
            self.add(
                "upload",
                "POST",
                [
                    "/account/avatar",
                    "/reports/upload",
                    "/contacts/import",
                    "/albums/7/photos",
                    "/careers/apply",
                    "/tickets/991/attach",
                ][i],
                body=multipart(parts, boundary),
                content_type=f"multipart/form-data; boundary={boundary}",
                headers=browser_headers(
                    HOSTS[0],
                    BROWSERS[i % 8],
                    i,
                    referer=f"https://{HOSTS[0]}/account",
                    cookie=_cookie(rng, 800 + i),
                ),
            )
        for i in range(6):
            xml = (
                f'<?xml version="1.0" encoding="UTF-8"?><order><id>{9000 + i}</id>'
                f'<customer>{NAMES[i]}</customer><total currency="EUR">{19.5 + i}</total>'
                '<items><item sku="A-1" qty="2"/></items></order>'
            )
            self.add(
                "xml",
                "POST",
                "/api/legacy/orders",
                body=xml,
                content_type="application/xml",
                headers=api_headers(HOSTS[2], "java", accept="application/xml"),
            )


REVIEWS = [
    "Fits true to size. The colour is a bit darker than in the photos.",
    "Battery lasts 2 days with normal use; charging takes ~90 min.",
    "Arrived quickly, well packed. 4 stars because the manual is only in German.",
    "Don't buy the XL if you're under 6'2\" -- way too long.",
    "Works with my Pixel 8 and my partner's iPhone 15. Pairing was instant.",
    "Meh. Does the job, but the zipper broke after a month :(",
    "Perfect gift for my dad (he's 70 and loves it).",
    "Bought two: one for home & one for the office.",
    "Sound quality is great; noise cancelling is OK-ish on trains.",
    "Le produit est conforme à la description, livraison rapide.",
    "Sehr gute Qualität, gerne wieder!",
    "Took 3 weeks to arrive instead of 5 days. Product itself is fine.",
]


def _mobile(b: _Benign) -> None:
    rng = b.rng
    host = HOSTS[2]
    for i in range(40):
        ua = ["ios_app", "okhttp", "dart"][i % 3]
        token = _jwt(rng)
        kind = i % 8
        if kind == 0:
            b.add(
                "mobile",
                "GET",
                "/api/v2/feed/home",
                query=qs(
                    [
                        ("locale", ["en_US", "de_DE", "ja_JP"][i % 3]),
                        ("app_version", "5.12.1"),
                        ("screen", "1179x2556"),
                    ]
                ),
                headers=api_headers(host, ua, token=token),
            )
        elif kind == 1:
            b.add(
                "mobile",
                "GET",
                f"/api/v2/products/{PRODUCTS[i % 10]}/reviews",
                query=qs([("page", str(i % 3 + 1)), ("sort", "most_helpful")]),
                headers=api_headers(host, ua, token=token),
            )
        elif kind == 2:
            doc = {
                "product": PRODUCTS[i % 10],
                "rating": i % 5 + 1,
                "title": ["Great", "Good value", "Not for me", "Love it"][i % 4],
                "text": REVIEWS[i % len(REVIEWS)],
                "verified_purchase": True,
            }
            b.add(
                "mobile",
                "POST",
                "/api/v2/reviews",
                body=jdump(doc),
                content_type="application/json",
                headers=api_headers(host, ua, token=token),
            )
        elif kind == 3:
            doc = {
                "line_items": [
                    {"sku": PRODUCTS[(i + j) % 10], "quantity": j + 1} for j in range(i % 3 + 1)
                ],
                "currency": "EUR",
            }
            b.add(
                "mobile",
                "PUT",
                f"/api/v2/carts/{_uuid(rng)}",
                body=jdump(doc),
                content_type="application/json",
                headers=api_headers(host, ua, token=token),
            )
        elif kind == 4:
            doc = {
                "platform": ["ios", "android"][i % 2],
                "push_token": rng.randbytes(32).hex(),
                "device": {
                    "model": ["iPhone15,3", "Pixel 8", "SM-S918B"][i % 3],
                    "os": ["17.2", "14", "14"][i % 3],
                },
                "opt_in": {"marketing": i % 2 == 0, "order_updates": True},
            }
            b.add(
                "mobile",
                "POST",
                "/api/v2/devices",
                body=jdump(doc),
                content_type="application/json",
                headers=api_headers(host, ua, token=token),
            )
        elif kind == 5:
            b.add(
                "mobile",
                "GET",
                "/api/v2/search/suggest",
                query=qs([("q", SEARCHES[(i * 7) % len(SEARCHES)][: 4 + i % 6])]),
                headers=api_headers(host, ua, token=token),
            )
        elif kind == 6:
            doc = {
                "batch": [
                    {
                        "name": ["screen_view", "tap", "purchase"][j % 3],
                        "ts": 1705300000 + j,
                        "params": {"screen": PAGES[j % 20], "value": round(j * 3.5, 2)},
                    }
                    for j in range(i % 6 + 2)
                ],
                "session_id": _uuid(rng),
            }
            b.add(
                "mobile",
                "POST",
                "/api/v2/events",
                body=jdump(doc),
                content_type="application/json",
                headers=api_headers(host, ua, token=token),
            )
        else:
            doc = {
                "address": {
                    "name": NAMES[i % len(NAMES)],
                    "line1": STREETS[i % 8],
                    "line2": ["", "Apt 4B", "c/o Müller", "Floor 3"][i % 4],
                    "city": CITIES[i % 8],
                    "postal_code": ["10115", "75001"][i % 2],
                    "country": ["DE", "FR"][i % 2],
                },
                "instructions": [
                    "Leave with the neighbour",
                    "Ring twice, please!",
                    "",
                    "Side door (blue gate)",
                ][i % 4],
            }
            b.add(
                "mobile",
                "POST",
                "/api/v2/me/addresses",
                body=jdump(doc),
                content_type="application/json",
                headers=api_headers(host, ua, token=token),
            )


def build_benign() -> list[dict[str, Any]]:
    b = _Benign()
    b.browse()
    b.forms()
    b.apis()
    b.misc()
    _mobile(b)
    return b.records
