"""The deterministic traffic model behind `lytics demo`.

Every event is a pure function of (seed, project, visitor slot, UTC day): a
day's traffic does not depend on the window, the number of projects or the
number of visitors asked for. Runs on different days (the default end date is
"yesterday") therefore re-send identical events, with identical messageIds,
for the days they share, and the API's dedupe keeps the database equal to the
union of their ground truths instead of storing conflicting versions.

Randomness comes only from `random.Random` instances seeded with strings that
name what they decide (Python hashes str seeds with SHA-512, so they are
stable across processes and PYTHONHASHSEED).
"""

from __future__ import annotations

import random
import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

CONVERSION_EVENTS: tuple[str, ...] = ("Signed Up", "Purchase")
LIBRARY = {"name": "lytics-demo", "version": "1"}
EPOCH = date(1970, 1, 1)
EPOCH_WEEKDAY = EPOCH.weekday()  # a Thursday
NEWSLETTER_WEEKDAY = 1  # Tuesday
TRANSACTIONAL_MAILS = {"Signed Up": "Welcome to {brand}", "Purchase": "Your {brand} receipt"}

# Sessions live inside [00:20, 23:40) UTC, at most 25 minutes pass between two
# events of a session and at least 35 between sessions of one visitor. So a
# sessionizer with a 30-minute inactivity timeout finds exactly the generated
# sessions, also when it looks across midnight.
DAY_OPEN_MS = 20 * 60_000
DAY_CLOSE_MS = (23 * 60 + 40) * 60_000
MAX_GAP_MS = 25 * 60_000
MIN_SESSION_GAP_MS = 35 * 60_000
MAX_SESSION_GAP_MS = 5 * 3_600_000
DAY_MS = 86_400_000

# Share of all hours' traffic per UTC hour: quiet nights, a morning and an afternoon peak.
HOUR_WEIGHTS = (
    0.2, 0.15, 0.1, 0.1, 0.1, 0.15, 0.3, 0.6, 1.0, 1.4, 1.6, 1.6,
    1.4, 1.5, 1.6, 1.6, 1.4, 1.2, 1.0, 0.9, 0.8, 0.6, 0.4, 0.3,
)  # fmt: skip


@dataclass(frozen=True)
class Parameters:
    seed: int
    projects: int
    days: int
    visitors: int
    end_date: date
    webhooks: bool = True

    def __post_init__(self) -> None:
        if self.seed < 0 or min(self.projects, self.days, self.visitors) < 1:
            raise ValueError("seed must be >= 0 and projects, days, visitors >= 1")

    @property
    def start_date(self) -> date:
        return self.end_date - timedelta(days=self.days - 1)

    @property
    def dates(self) -> tuple[date, ...]:
        return tuple(self.start_date + timedelta(days=n) for n in range(self.days))

    @property
    def slugs(self) -> tuple[str, ...]:
        return tuple(project_slug(self.seed, i) for i in range(1, self.projects + 1))


def project_slug(seed: int, index: int) -> str:
    return f"demo-s{seed}-{index}"


# --------------------------------------------------------------------- catalogue


@dataclass(frozen=True)
class Page:
    path: str
    title: str
    weight: float  # how often visitors land or navigate here


@dataclass(frozen=True)
class Action:
    """A track event that is not a conversion, with one varying property."""

    event: str
    prop: str
    values: tuple[str, ...]


@dataclass(frozen=True)
class Site:
    kind: str
    brand: str
    pages: tuple[Page, ...]
    signup: Page
    checkout: Page
    welcome: Page
    actions: tuple[Action, ...]
    prices: tuple[str, ...]
    plans: tuple[str, ...]
    weekday_factors: tuple[float, ...]  # Monday first


SAAS = Site(
    kind="saas",
    brand="Acme Cloud",
    pages=(
        Page("/", "Home", 5),
        Page("/features", "Features", 3),
        Page("/pricing", "Pricing", 3),
        Page("/docs", "Docs", 2.5),
        Page("/docs/getting-started", "Getting started", 2),
        Page("/docs/api", "API reference", 1.5),
        Page("/blog", "Blog", 1.5),
        Page("/blog/launch-week", "Launch week recap", 1.5),
        Page("/blog/postgres-at-scale", "Postgres at scale", 1.2),
        Page("/changelog", "Changelog", 0.8),
        Page("/about", "About", 0.6),
    ),
    signup=Page("/signup", "Sign up", 0),
    checkout=Page("/billing/upgrade", "Upgrade", 0),
    welcome=Page("/app/welcome", "Welcome", 0),
    actions=(
        Action("CTA Clicked", "cta", ("hero", "pricing-table", "footer", "nav")),
        Action("Docs Searched", "query", ("webhooks", "retention", "dbt", "s3 export", "sso")),
        Action("Video Played", "video", ("product-tour", "dbt-in-5-minutes")),
    ),
    prices=("29.00", "99.00", "299.00"),
    plans=("free", "team", "business"),
    # B2B: busy on weekdays, half as busy at weekends.
    weekday_factors=(1.0, 1.05, 1.05, 1.0, 0.9, 0.55, 0.5),
)

SHOP = Site(
    kind="shop",
    brand="Harbor Goods",
    pages=(
        Page("/", "Home", 5),
        Page("/collections/new", "New arrivals", 3),
        Page("/products/linen-shirt", "Linen shirt", 2),
        Page("/products/canvas-tote", "Canvas tote", 2),
        Page("/products/wool-socks", "Wool socks", 1.5),
        Page("/products/rain-jacket", "Rain jacket", 1.5),
        Page("/cart", "Cart", 1.2),
        Page("/blog/care-guide", "Care guide", 0.8),
        Page("/faq", "FAQ", 0.6),
    ),
    signup=Page("/account/register", "Create account", 0),
    checkout=Page("/checkout", "Checkout", 0),
    welcome=Page("/account", "Your account", 0),
    actions=(
        Action("Product Viewed", "sku", ("LIN-01", "TOT-02", "SOC-03", "RJK-04")),
        Action("Added to Cart", "sku", ("LIN-01", "TOT-02", "SOC-03", "RJK-04")),
        Action("Size Guide Opened", "category", ("shirts", "jackets", "socks")),
    ),
    prices=("18.50", "24.00", "42.90", "89.00", "129.00"),
    plans=("customer",),
    # Consumers shop at weekends.
    weekday_factors=(0.85, 0.85, 0.9, 0.95, 1.0, 1.2, 1.25),
)

SITES = (SAAS, SHOP)


@dataclass(frozen=True)
class Source:
    """Where a session comes from: a referrer, UTM parameters, or neither (direct)."""

    referrer: str | None
    campaign: tuple[str, str, str] | None  # utm source, medium, campaign name
    weight: float


SOURCES = (
    Source(None, None, 34),
    Source("https://www.google.com/", None, 28),
    Source("https://www.bing.com/", None, 4),
    Source("https://duckduckgo.com/", None, 3),
    Source("https://t.co/", None, 7),
    Source("https://news.ycombinator.com/", None, 4),
    Source("https://www.reddit.com/r/analytics/", None, 3),
    Source("https://www.theverge.com/", None, 1.5),
    Source("https://techcrunch.com/", None, 1.5),
    Source(None, ("newsletter", "email", "monthly-digest"), 4),
    Source("https://t.co/", ("twitter", "social", "launch-week"), 3),
    Source("https://www.google.com/", ("google", "cpc", "brand-search"), 4),
    Source("https://www.linkedin.com/", ("linkedin", "social", "spring-webinar"), 1.5),
)
SOURCE_WEIGHTS = tuple(s.weight for s in SOURCES)

USER_AGENTS = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/126.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/17.5 Safari/605.1.15",
    "Mozilla/5.0 (X11; Linux x86_64; rv:127.0) Gecko/20100101 Firefox/127.0",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/126.0.0.0 Mobile Safari/537.36",
)
LOCALES = ("en-US", "en-US", "en-GB", "de-DE", "fr-FR", "es-ES", "pt-BR")
FIRST_NAMES = ("Ada", "Grace", "Alan", "Linus", "Margaret", "Ken", "Barbara", "Dennis", "Radia")
LAST_NAMES = ("Lovelace", "Hopper", "Turing", "Torvalds", "Hamilton", "Thompson", "Liskov")
# Documentation address ranges (RFC 5737): realistic-looking, never anyone's real address.
IP_PREFIXES = ("192.0.2", "198.51.100", "203.0.113")


@dataclass(frozen=True)
class Habit:
    """How often a kind of visitor comes back, and how likely they sign up."""

    daily_rate: float
    signup_chance: float
    weight: float


HABITS = (Habit(0.45, 0.6, 10), Habit(0.15, 0.3, 30), Habit(0.035, 0.08, 60))
HABIT_WEIGHTS = tuple(h.weight for h in HABITS)


# --------------------------------------------------------------------- output


@dataclass(frozen=True)
class EmailEvent:
    """One Resend webhook: `delivery_id` becomes its `svix-id`."""

    delivery_id: str
    type: str
    created_at: datetime
    payload: dict[str, Any]


@dataclass(frozen=True)
class ProjectTraffic:
    slug: str
    site: Site
    events: tuple[dict[str, Any], ...]  # Segment events as sent, in time order
    emails: tuple[EmailEvent, ...]  # in time order
    reach: dict[date, int]  # the social reach an integration reports per day


@dataclass(frozen=True)
class Traffic:
    parameters: Parameters
    projects: tuple[ProjectTraffic, ...]


# --------------------------------------------------------------------- visitors


@dataclass(frozen=True)
class _Slot:
    """A place in the audience. Its visitor is replaced by a new one every `lifetime` days."""

    index: int
    lifetime: int
    phase: int

    def generation(self, day: int) -> int:
        return (day + self.phase) // self.lifetime


@dataclass(frozen=True)
class _Visitor:
    slot: int
    generation: int
    anonymous_id: str
    user_id: str
    name: str
    email: str
    plan: str
    active_days: frozenset[int]  # epoch days
    signup_day: int | None
    explicit_sessions: bool  # whether this visitor's SDK sends a session id
    purchase_rate: float
    user_agent: str
    ip: str
    locale: str

    def identified_before(self, day: int) -> bool:
        return self.signup_day is not None and self.signup_day < day


def _rng(*names: object) -> random.Random:
    """A generator for one named decision: the same names always draw the same numbers."""
    # Reproducibility is the point and nothing here is secret, hence no `secrets`.
    return random.Random(":".join(map(str, names)))  # noqa: S311


def _uuid(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def _weekday(day: int) -> int:
    return (day + EPOCH_WEEKDAY) % 7


def _slot(seed: int, slug: str, index: int) -> _Slot:
    rng = _rng(seed, slug, "slot", index)
    lifetime = rng.randint(30, 120)
    return _Slot(index, lifetime, rng.randrange(lifetime))


def _visitor(seed: int, slug: str, site: Site, slot: _Slot, generation: int) -> _Visitor:
    rng = _rng(seed, slug, "visitor", slot.index, generation)
    habit = rng.choices(HABITS, HABIT_WEIGHTS)[0]
    first_day = generation * slot.lifetime - slot.phase
    # Drawn over the whole lifetime, in order, so a day's activity never depends on the window.
    active = frozenset(
        day
        for day in range(first_day, first_day + slot.lifetime)
        if rng.random() < habit.daily_rate * site.weekday_factors[_weekday(day)]
    )
    signs_up = rng.random() < habit.signup_chance
    signup_day = rng.choice(sorted(active)) if signs_up and active else None
    first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
    user_id = f"usr_{rng.getrandbits(48):012x}"
    return _Visitor(
        slot=slot.index,
        generation=generation,
        anonymous_id=_uuid(rng),
        user_id=user_id,
        name=f"{first} {last}",
        email=f"{first.lower()}.{last.lower()}.{user_id[-6:]}@example.com",
        plan=rng.choice(site.plans),
        active_days=active,
        signup_day=signup_day,
        explicit_sessions=rng.random() < 0.8,
        purchase_rate=rng.uniform(0.05, 0.35),
        user_agent=rng.choice(USER_AGENTS),
        ip=f"{rng.choice(IP_PREFIXES)}.{rng.randint(1, 254)}",
        locale=rng.choice(LOCALES),
    )


# --------------------------------------------------------------------- sessions


@dataclass(frozen=True)
class _Step:
    """One event of a session, placed relative to the session's start."""

    offset_ms: int
    type: str  # page, track or identify
    page: Page  # where the visitor is
    url: str
    referrer: str | None = None  # for page events
    event: str | None = None  # for track events
    properties: dict[str, Any] | None = None
    identified: bool = False
    campaign: tuple[str, str, str] | None = None  # on the landing page only


def _dwell(rng: random.Random, mean_s: float) -> int:
    """Milliseconds until the next event: heavy-tailed, but never a session-ending pause."""
    return min(4_000 + int(rng.expovariate(1 / mean_s) * 1000), MAX_GAP_MS)


def _weighted_page(rng: random.Random, pages: tuple[Page, ...] | list[Page]) -> Page:
    return rng.choices(pages, [p.weight for p in pages])[0]


def _url(host: str, page: Page, campaign: tuple[str, str, str] | None = None) -> str:
    if campaign is None:
        return host + page.path
    source, medium, name = campaign
    return f"{host}{page.path}?utm_source={source}&utm_medium={medium}&utm_campaign={name}"


class _SessionPlan:
    """A session's steps on a running clock, remembering which page the visitor is on."""

    def __init__(self, host: str, source: Source, landing: Page, identified: bool) -> None:
        self.host = host
        self.clock = 0
        self.identified = identified
        self.page = landing
        self.url = _url(host, landing, source.campaign)
        landing_step = _Step(
            0,
            "page",
            landing,
            self.url,
            referrer=source.referrer,
            identified=identified,
            campaign=source.campaign,
        )
        self.steps = [landing_step]

    def visit(self, rng: random.Random, page: Page) -> None:
        referrer = self.url
        self.clock += _dwell(rng, 70)
        self.page, self.url = page, _url(self.host, page)
        self.steps.append(
            _Step(self.clock, "page", page, self.url, referrer, identified=self.identified)
        )

    def track(self, rng: random.Random, event: str, properties: dict[str, Any]) -> None:
        self.clock += _dwell(rng, 25)
        self.steps.append(
            _Step(
                self.clock,
                "track",
                self.page,
                self.url,
                event=event,
                properties=properties,
                identified=self.identified,
            )
        )

    def identify(self) -> None:
        self.clock += 800  # the SDK identifies right after the sign-up call
        self.steps.append(_Step(self.clock, "identify", self.page, self.url, identified=True))


def _session_steps(
    rng: random.Random, site: Site, host: str, visitor: _Visitor, *, signup: bool, identified: bool
) -> list[_Step]:
    plan = _SessionPlan(
        host, rng.choices(SOURCES, SOURCE_WEIGHTS)[0], _weighted_page(rng, site.pages), identified
    )
    # About a third of sessions bounce; a few read a dozen pages.
    for _ in range(min(int(rng.expovariate(1 / 2.2)), 11)):
        if rng.random() < 0.25:
            action = rng.choice(site.actions)
            plan.track(rng, action.event, {action.prop: rng.choice(action.values)})
        plan.visit(rng, _weighted_page(rng, [p for p in site.pages if p is not plan.page]))
    if signup:
        plan.visit(rng, site.signup)
        method = rng.choice(("email", "google", "github"))
        plan.track(rng, "Signed Up", {"plan": visitor.plan, "method": method})
        plan.identified = True
        plan.identify()
        plan.visit(rng, site.welcome)
    if plan.identified and rng.random() < visitor.purchase_rate:
        plan.visit(rng, site.checkout)
        quantity = 1 if site.kind == "saas" else rng.choice((1, 1, 1, 2, 3))
        revenue = Decimal(rng.choice(site.prices)) * quantity
        properties = {
            "order_id": f"ord_{rng.getrandbits(40):010x}",
            "revenue": float(revenue),
            "currency": "USD",
            "quantity": quantity,
        }
        plan.track(rng, "Purchase", properties)
    return plan.steps


def _start_ms(rng: random.Random) -> int:
    hour = rng.choices(range(24), HOUR_WEIGHTS)[0]
    return hour * 3_600_000 + rng.randrange(3_600_000)


def iso(moment: datetime) -> str:
    """UTC with milliseconds, as browsers' `toISOString()` writes it."""
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def _midnight(day: int) -> datetime:
    return datetime(1970, 1, 1, tzinfo=UTC) + timedelta(days=day)


@dataclass(frozen=True)
class _Mail:
    """An email the site sends; its webhooks follow from it."""

    key: str
    subject: str
    sent_at: datetime
    to: str


class _DayWriter:
    """One visitor's steps on one day as Segment events, with messageIds that never change."""

    def __init__(self, slug: str, visitor: _Visitor, day: int) -> None:
        self.visitor = visitor
        self.midnight = _midnight(day)
        self.label = f"{slug}-{self.midnight:%Y%m%d}-v{visitor.slot}g{visitor.generation}"
        self.sequence = 0
        self.events: list[dict[str, Any]] = []

    def _message_id(self) -> str:
        # Seed, project, day, visitor and sequence: a re-run sends the same ids, so the
        # API answers "duplicate" instead of storing the events twice.
        self.sequence += 1
        return f"{self.label}-{self.sequence:03d}"

    def write(self, step: _Step, at_ms: int, session_id: str | None) -> dict[str, Any]:
        v = self.visitor
        page = {"path": step.page.path, "url": step.url, "title": step.page.title}
        if step.type == "page":
            page["referrer"] = step.referrer or ""
        context: dict[str, Any] = {
            "library": dict(LIBRARY),
            "locale": v.locale,
            "userAgent": v.user_agent,
            "ip": v.ip,
            "page": page,
        }
        if session_id is not None:
            context["sessionId"] = session_id
        if step.campaign is not None:
            source, medium, name = step.campaign
            context["campaign"] = {"source": source, "medium": medium, "name": name}
        event: dict[str, Any] = {
            "messageId": self._message_id(),
            "type": step.type,
            "anonymousId": v.anonymous_id,
            "timestamp": iso(self.midnight + timedelta(milliseconds=at_ms)),
            "context": context,
        }
        if step.identified:
            event["userId"] = v.user_id
        if step.type == "page":
            event["name"] = step.page.title
            event["properties"] = dict(page)
        elif step.type == "track":
            event["event"] = step.event
            event["properties"] = step.properties or {}
        else:
            event["traits"] = {"email": v.email, "name": v.name, "plan": v.plan}
        self.events.append(event)
        return event


def _visit_day(
    seed: int, slug: str, site: Site, visitor: _Visitor, day: int
) -> tuple[list[dict[str, Any]], list[_Mail]]:
    rng = _rng(seed, slug, "day", visitor.slot, visitor.generation, day)
    host = f"https://www.{slug}.example"
    writer = _DayWriter(slug, visitor, day)
    mails: list[_Mail] = []
    identified = visitor.identified_before(day)
    session_end: int | None = None
    for number in range(1 + (rng.random() < 0.22) + (rng.random() < 0.06)):
        signup = visitor.signup_day == day and number == 0
        steps = _session_steps(rng, site, host, visitor, signup=signup, identified=identified)
        duration = steps[-1].offset_ms
        if session_end is None:
            start = min(max(_start_ms(rng), DAY_OPEN_MS), DAY_CLOSE_MS - duration - 1)
        else:
            start = session_end + rng.randint(MIN_SESSION_GAP_MS, MAX_SESSION_GAP_MS)
            if start + duration >= DAY_CLOSE_MS:
                break  # no time left today: the visitor did not come back
        session_id = _uuid(rng) if visitor.explicit_sessions else None
        for step in steps:
            event = writer.write(step, start + step.offset_ms, session_id)
            if step.event in TRANSACTIONAL_MAILS:
                # The site mails half a minute after the event that triggers the mail.
                sent_at = writer.midnight + timedelta(milliseconds=start + step.offset_ms + 30_000)
                subject = TRANSACTIONAL_MAILS[step.event].format(brand=site.brand)
                mails.append(_Mail(event["messageId"], subject, sent_at, visitor.email))
        session_end = start + duration
        identified = steps[-1].identified
    return writer.events, mails


# --------------------------------------------------------------------- emails


def _newsletter(seed: int, slug: str, site: Site, visitor: _Visitor, day: int) -> _Mail:
    rng = _rng(seed, slug, "newsletter", visitor.slot, visitor.generation, day)
    # The weekly newsletter goes out at 14:00 UTC, spread over ten minutes.
    sent_at = _midnight(day) + timedelta(hours=14, milliseconds=rng.randrange(600_000))
    key = f"newsletter:{visitor.slot}:{visitor.generation}:{day}"
    return _Mail(key, f"This week at {site.brand}", sent_at, visitor.email)


def _email_events(seed: int, slug: str, site: Site, mail: _Mail) -> list[EmailEvent]:
    """Resend's webhooks for one email: sent, then delivered or bounced, then maybe more."""
    rng = _rng(seed, slug, "email", mail.key)
    data = {
        "email_id": _uuid(rng),
        "from": f"{site.brand} <hello@{slug}.example>",
        "to": [mail.to],
        "subject": mail.subject,
        "created_at": iso(mail.sent_at),
    }
    timeline: list[tuple[str, datetime, dict[str, Any]]] = [("email.sent", mail.sent_at, {})]
    arrived = mail.sent_at + timedelta(milliseconds=rng.randint(800, 6_000))
    if rng.random() < 0.04:
        bounce = {
            "type": "Permanent",
            "subType": "General",
            "message": "The recipient's mail server permanently rejected the email.",
        }
        timeline.append(("email.bounced", arrived, {"bounce": bounce}))
    else:
        timeline.append(("email.delivered", arrived, {}))
        if rng.random() < 0.45:
            opened = arrived + timedelta(seconds=rng.expovariate(1 / 5_400))
            timeline.append(("email.opened", opened, {}))
            if rng.random() < 0.3:
                clicked = opened + timedelta(seconds=rng.uniform(5, 600))
                click = {
                    "ipAddress": f"{rng.choice(IP_PREFIXES)}.{rng.randint(1, 254)}",
                    "link": f"https://www.{slug}.example/?utm_source=resend&utm_medium=email",
                    "timestamp": iso(clicked),
                    "userAgent": rng.choice(USER_AGENTS),
                }
                timeline.append(("email.clicked", clicked, {"click": click}))
        if rng.random() < 0.015:
            complained = arrived + timedelta(seconds=rng.uniform(600, 7_200))
            timeline.append(("email.complained", complained, {}))
    # What happens after midnight belongs to a day this run does not generate.
    day_end = mail.sent_at.replace(hour=0, minute=0, second=0, microsecond=0) + timedelta(days=1)
    return [
        EmailEvent(
            delivery_id=f"msg_{rng.getrandbits(128):032x}",
            type=kind,
            created_at=at,
            payload={"type": kind, "created_at": iso(at), "data": {**data, **extra}},
        )
        for kind, at, extra in timeline
        if at < day_end
    ]


# --------------------------------------------------------------------- projects


def _reach(seed: int, slug: str, site: Site, day: int) -> int:
    base = _rng(seed, slug, "profile").randint(800, 5_000)
    noise = _rng(seed, slug, "reach", day).uniform(0.75, 1.25)
    return round(base * site.weekday_factors[_weekday(day)] * noise)


def epoch_day(day: date) -> int:
    return (day - EPOCH).days


def _project(params: Parameters, index: int) -> ProjectTraffic:
    seed, slug = params.seed, project_slug(params.seed, index)
    site = SITES[(index - 1) % len(SITES)]
    slots = [_slot(seed, slug, k) for k in range(params.visitors)]
    visitors: dict[tuple[int, int], _Visitor] = {}
    events: list[dict[str, Any]] = []
    mails: list[_Mail] = []
    for day in map(epoch_day, params.dates):
        for slot in slots:
            key = (slot.index, slot.generation(day))
            visitor = visitors.get(key)
            if visitor is None:
                visitor = visitors[key] = _visitor(seed, slug, site, slot, key[1])
            if day in visitor.active_days:
                day_events, day_mails = _visit_day(seed, slug, site, visitor, day)
                events += day_events
                mails += day_mails
            if _weekday(day) == NEWSLETTER_WEEKDAY and visitor.identified_before(day):
                mails.append(_newsletter(seed, slug, site, visitor, day))
    emails = [e for mail in mails for e in _email_events(seed, slug, site, mail)]
    return ProjectTraffic(
        slug=slug,
        site=site,
        events=tuple(sorted(events, key=lambda e: (e["timestamp"], e["messageId"]))),
        emails=tuple(sorted(emails, key=lambda e: (e.created_at, e.delivery_id))),
        reach={d: _reach(seed, slug, site, epoch_day(d)) for d in params.dates},
    )


def generate(params: Parameters) -> Traffic:
    """All traffic for these parameters; the same parameters always give the same traffic."""
    return Traffic(params, tuple(_project(params, i) for i in range(1, params.projects + 1)))
