"""Deterministic advisory fixtures for load benchmarks: ``python benchmarks/bench_fixtures.py OUT --n 1000``.

``generate(out, n, seed=...)`` writes, under ``out``:

* ``advice/<slug>.html``: N travel-advisory pages of about 60 KB each (slugs ``country-0001`` ...,
  zero-padded to the width of N), each with a large header and navigation, a footer of boilerplate
  and a ``<main>`` holding the advisory itself: the title, a "Last updated: 12 March 2026" line, a
  level sentence in the US wording ("Level 2: Exercise increased caution") and sections of
  paragraphs (safety and security, entry requirements, health, local laws...) drawn from a
  vocabulary with a seeded random generator, so that every page reads differently;
* ``api/content/foreign-travel-advice/<slug>.json``: items shaped like the GOV.UK Content API's
  travel advice, for the first min(N, 200) slugs;
* ``feed.xml``: an RSS 2.0 feed of 200 items in the style of the US State Department's travel
  advisories feed (items cycle over the slugs when N < 200);
* ``fixtures-state.json``: what the pages currently say (level, date, recent events), so that
  ``mutate`` can rewrite a page later.

``mutate(fixtures, fraction, seed=...)`` then changes the advisory text of round(fraction * N)
pages: a new event sentence in the safety section, sometimes a new level, and a later "Last
updated" date; the JSON item and feed items of those destinations follow. Files whose content did
not change are not touched, so a web server keeps their ETag and Last-Modified. Changed files are
replaced atomically and their modification time moves forward by at least one second, since web
servers date files to the second.

The same N and seed always give the same bytes. Each call to ``mutate`` adds a new dated event, so
mutating again (with the same seed or another) always yields new content.

Command line::

    python benchmarks/bench_fixtures.py OUT_DIR --n 1000 [--seed 1]
    python benchmarks/bench_fixtures.py OUT_DIR --n 1000 --mutate 0.05 [--seed 2]

With ``--mutate``, an existing OUT_DIR is mutated with ``--seed`` as the mutation seed (it is
generated first, with that seed, when missing).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import random
import string
import sys
import time
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from email.utils import format_datetime
from pathlib import Path
from typing import Any, TypedDict

PAGE_TARGET_BYTES = 60_000
FEED_ITEMS = 200
API_ITEMS = 200
STATE_FILE = "fixtures-state.json"
# Links in the feed and the JSON items use this origin; the paths are the ones the files are
# served under, so a client can swap the origin for its own server's.
SITE = "https://travel.example.gov"

LEVELS = {
    1: "Exercise normal precautions",
    2: "Exercise increased caution",
    3: "Reconsider travel",
    4: "Do not travel",
}
_MONTHS = (
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
)
_FIRST_DATE = dt.date(2026, 1, 5)
_LAST_DATE = dt.date(2026, 3, 12)
_ALERT_STATUS = {
    1: [],
    2: ["avoid_all_but_essential_travel_to_parts"],
    3: ["avoid_all_but_essential_travel_to_whole_country", "avoid_all_travel_to_parts"],
    4: ["avoid_all_travel_to_whole_country"],
}
_FCDO_ADVICE = {
    1: "FCDO does not advise against travel to {country}, but check this advice before you go.",
    2: "FCDO advises against all but essential travel to parts of {country}.",
    3: "FCDO advises against all but essential travel to {country}, and against all travel to parts of it.",
    4: "FCDO advises against all travel to {country}.",
}


# --- vocabulary ---------------------------------------------------------------------------------

_SYLLABLES = (
    "ka ra mo ta li ven dor sa bel mir zan tu no gha rel pa os an ki lu ber vos tam el ri "
    "shan qu dar mal ne ova is tor ba yel"
).split()
_WORDS: dict[str, tuple[str, ...]] = {
    "crime": (
        "pickpocketing",
        "bag snatching",
        "armed robbery",
        "car theft",
        "express kidnapping",
        "credit card fraud",
        "burglary",
        "drink spiking",
        "carjacking",
        "street harassment",
    ),
    "place": (
        "markets",
        "bus stations",
        "tourist sites",
        "beaches",
        "nightlife districts",
        "hotel lobbies",
        "airports",
        "ferry terminals",
        "shopping centres",
        "border crossings",
    ),
    "group": (
        "separatist militias",
        "criminal gangs",
        "armed bandits",
        "extremist groups",
        "smuggling networks",
        "insurgent groups",
    ),
    "hazard": (
        "flooding",
        "landslides",
        "earthquakes",
        "tropical storms",
        "wildfires",
        "volcanic activity",
        "extreme heat",
        "sandstorms",
    ),
    "disease": (
        "dengue fever",
        "malaria",
        "cholera",
        "rabies",
        "yellow fever",
        "typhoid",
        "hepatitis A",
        "Zika virus",
    ),
    "document": (
        "passport",
        "visa",
        "yellow fever vaccination certificate",
        "return ticket",
        "proof of accommodation",
        "travel insurance certificate",
    ),
    "when": (
        "especially after dark",
        "during public holidays",
        "at weekends",
        "in the rainy season",
        "during election periods",
        "around religious festivals",
        "at any time of day",
    ),
    "advice": (
        "stay aware of your surroundings",
        "avoid demonstrations and large gatherings",
        "keep copies of your important documents",
        "follow the advice of the local authorities",
        "do not display signs of wealth",
        "use licensed taxis booked through your hotel",
        "tell someone you trust about your travel plans",
        "keep your phone charged and carry a spare battery",
    ),
    "transport": (
        "minibuses",
        "long-distance coaches",
        "domestic flights",
        "river ferries",
        "motorcycle taxis",
        "overnight trains",
    ),
    "offence": (
        "possession of drugs",
        "photographing military sites",
        "public drunkenness",
        "criticising the head of state",
        "importing pornography",
        "dressing immodestly at religious sites",
    ),
    "month": _MONTHS,
}
_SECTIONS: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    (
        "safety-and-security",
        "Safety and security",
        (
            "There is a risk of {crime} in {city}, {when}.",
            "Criminals target foreigners at {place} in {capital} and {city}.",
            "Political demonstrations take place in {capital} and can turn violent without warning.",
            "The security situation in {region} can change quickly; {advice}.",
            "Police have set up checkpoints on the main roads out of {city}.",
            "{Group} are active in the border areas of {region}.",
            "Incidents of {crime} rise {when}, so {advice}.",
            "If you are a victim of crime, report it to the police in {city} within {number} hours.",
        ),
    ),
    (
        "terrorism",
        "Terrorism",
        (
            "Terrorists are very likely to try to carry out attacks in {country}.",
            "Attacks could be indiscriminate, including in places visited by foreigners such as {place}.",
            "{Group} have claimed attacks on security forces in {region}.",
            "Stay aware of your surroundings at all times and {advice}.",
            "The authorities raised the national threat level in {month} after an attack in {city}.",
            "There is a heightened risk of attacks {when}.",
        ),
    ),
    (
        "entry-requirements",
        "Entry requirements",
        (
            "Your {document} must be valid for at least {number} months from the date you arrive.",
            "You can get a visa on arrival at {capital} airport for stays of up to {number} days.",
            "Immigration officers may ask to see your {document} and your {document2}.",
            "If you overstay your visa you may be fined and detained until the fine is paid.",
            "You must register with the local police within {number} days if you stay outside a hotel.",
            "Check the entry requirements with the embassy of {country} before you travel.",
            "Travellers arriving from {month} onwards need an electronic travel authorisation.",
        ),
    ),
    (
        "health",
        "Health",
        (
            "There is a risk of {disease} in {region}, {when}.",
            "Medical facilities outside {capital} are limited and may not meet international standards.",
            "Make sure you have travel insurance that covers medical evacuation from {city}.",
            "Outbreaks of {disease} were reported in {region} in {month}.",
            "Carry a supply of the medicines you need; some are controlled in {country}.",
            "Drink bottled or boiled water and avoid ice in drinks in {city}.",
            "Emergency ambulances can take a long time to reach {region}.",
        ),
    ),
    (
        "local-laws-and-customs",
        "Local laws and customs",
        (
            "Penalties for {offence} are severe and can include long prison sentences.",
            "Respect local customs in {region}, especially {when}.",
            "You must carry your {document} at all times and show it if the police ask.",
            "Same-sex relationships are not widely accepted in parts of {country}.",
            "{Offence} is a criminal offence in {country}.",
            "Dress conservatively when you visit {place} in {city}.",
        ),
    ),
    (
        "natural-disasters",
        "Natural disasters",
        (
            "{Hazard} can affect travel in {region}, {when}.",
            "The season for {hazard} usually runs from {month} to {month2}.",
            "Roads between {capital} and {city} can close at short notice because of {hazard}.",
            "Follow the advice of the local authorities and monitor local media for news of {hazard}.",
            "{Hazard} in {month} damaged roads and bridges across {region}.",
        ),
    ),
    (
        "travel-and-transport",
        "Travel and transport",
        (
            "{Transport} are often overcrowded and poorly maintained.",
            "Road conditions outside {capital} are poor, especially {when}.",
            "Do not travel by road between {city} and {city2} after dark.",
            "Domestic airlines serve {city} several times a week, but schedules change often.",
            "Accidents involving {transport} are common in {region}.",
            "If you drive, keep your doors locked and your windows closed in {city}.",
        ),
    ),
    (
        "getting-help",
        "Getting help",
        (
            "The embassy in {capital} can give consular help to its nationals.",
            "Call the embassy on +{phone} if you need urgent help in {country}.",
            "Emergency services in {country} can be reached on {number}{number2}{number2}.",
            "Consular staff may not be able to reach {region} quickly.",
            "Our ability to help in {region} is severely limited.",
        ),
    ),
)
_INTRO_REASONS = (
    "crime",
    "terrorism",
    "civil unrest",
    "kidnapping",
    "armed conflict",
    "health risks",
    "natural disasters",
    "wrongful detention",
)
_EVENTS = (
    "Armed groups attacked a convoy near the capital on {date}.",
    "Protests turned violent in {city} on {date}; several people were injured.",
    "The authorities declared a state of emergency in {region} on {date}.",
    "Gunfire was reported near the airport in {capital} on {date}, and flights were suspended.",
    "Flooding closed the main road between {capital} and {city} on {date}.",
    "An explosion killed several people at a market in {city} on {date}.",
    "A curfew was imposed in {city} from 8pm to 6am on {date}.",
    "The border crossing at {city} was closed on {date} after clashes between security forces and militants.",
)


class _CountryState(TypedDict):
    level: int
    updated: str
    events: list[str]


@dataclass(frozen=True)
class Fixtures:
    """The generated files: ``pages`` in slug order, the JSON ``items`` and the RSS ``feed``."""

    root: Path
    pages: tuple[Path, ...]
    items: tuple[Path, ...]
    feed: Path

    @property
    def slugs(self) -> tuple[str, ...]:
        """The page slugs, in order."""
        return tuple(page.stem for page in self.pages)


@dataclass(frozen=True)
class _Places:
    capital: str
    cities: tuple[str, ...]
    regions: tuple[str, ...]


@dataclass(frozen=True)
class _Body:
    """What a page says regardless of its current state: places, intro reasons, sections."""

    places: _Places
    reasons: tuple[str, ...]
    sections: tuple[tuple[str, str, tuple[str, ...]], ...]  # id, heading, paragraphs (HTML)


# --- small helpers ------------------------------------------------------------------------------


def slug_width(n: int) -> int:
    """The number of digits of slugs for n pages."""
    return len(str(n))


def slug_of(index: int, n: int) -> str:
    """The slug of the page ``index`` (1-based) among n: ``country-0042``."""
    return f"country-{index:0{slug_width(n)}d}"


def country_name(slug: str) -> str:
    """The invented country a slug stands for: ``country-0042`` -> ``Country 0042``."""
    return "Country " + slug.rsplit("-", 1)[1]


def long_date(day: dt.date) -> str:
    """``12 March 2026``, whatever the locale."""
    return f"{day.day} {_MONTHS[day.month - 1]} {day.year}"


def _rng(*parts: object) -> random.Random:
    return random.Random(":".join(str(part) for part in parts))


def _fields(template: str) -> tuple[str, ...]:
    return tuple(name for _, name, _, _ in string.Formatter().parse(template) if name)


_TEMPLATE_FIELDS = {tpl: _fields(tpl) for _, _, tpls in _SECTIONS for tpl in tpls}


def _place_name(rng: random.Random) -> str:
    return "".join(rng.choice(_SYLLABLES) for _ in range(rng.randint(2, 3))).capitalize()


def _places(rng: random.Random) -> _Places:
    return _Places(
        capital=_place_name(rng),
        cities=tuple(_place_name(rng) for _ in range(6)),
        regions=tuple(f"{_place_name(rng)} province" for _ in range(5)),
    )


def _fill(template: str, country: str, places: _Places, rng: random.Random) -> str:
    """One sentence: the template with each field drawn from the vocabulary."""
    values: dict[str, str] = {}
    for field in _TEMPLATE_FIELDS[template]:
        values[field] = _field_value(field, country, places, rng)
    return template.format(**values)


def _field_value(field: str, country: str, places: _Places, rng: random.Random) -> str:
    base = field.lower().rstrip("2")
    if base == "country":
        value = country
    elif base == "capital":
        value = places.capital
    elif base == "city":
        value = rng.choice(places.cities)
    elif base == "region":
        value = rng.choice(places.regions)
    elif base == "number":
        value = str(rng.randint(2, 9))
    elif base == "phone":
        value = (
            f"{rng.randint(200, 999)} {rng.randint(10, 99)} {rng.randint(100, 999)} {rng.randint(1000, 9999)}"
        )
    else:
        value = rng.choice(_WORDS[base])
    return value[0].upper() + value[1:] if field[0].isupper() else value


# --- the page body ------------------------------------------------------------------------------


def _body(seed: int, index: int, country: str, budget: int) -> _Body:
    """The sections of one page, filled round-robin with paragraphs until ``budget`` characters."""
    rng = _rng("page", seed, index)
    places = _places(rng)
    reasons = tuple(rng.sample(_INTRO_REASONS, rng.randint(2, 4)))
    paragraphs: list[list[str]] = [[] for _ in _SECTIONS]
    size = 0
    while size < budget:
        for position, (_, _, templates) in enumerate(_SECTIONS):
            picked = rng.sample(templates, rng.randint(2, min(5, len(templates))))
            sentences = [_fill(template, country, places, rng) for template in picked]
            paragraph = "<p>" + " ".join(sentences) + "</p>\n"
            paragraphs[position].append(paragraph)
            size += len(paragraph)
            if size >= budget:
                break
    sections = tuple(
        (section_id, heading, tuple(paras))
        for (section_id, heading, _), paras in zip(_SECTIONS, paragraphs, strict=True)
    )
    return _Body(places=places, reasons=reasons, sections=sections)


def _event(rng: random.Random, places: _Places, day: dt.date) -> str:
    template = rng.choice(_EVENTS)
    return template.format(
        date=long_date(day),
        city=rng.choice(places.cities),
        region=rng.choice(places.regions),
        capital=places.capital,
    )


def _intro(country: str, level: int, reasons: Sequence[str]) -> str:
    listed = ", ".join(reasons[:-1]) + f" and {reasons[-1]}" if len(reasons) > 1 else reasons[0]
    return f"{LEVELS[level]} in {country} due to {listed}. Some areas have increased risk."


# --- boilerplate --------------------------------------------------------------------------------

_MENUS: tuple[tuple[str, tuple[str, ...]], ...] = (
    (
        "Passports",
        (
            "Apply for a passport in person",
            "Renew a passport by mail",
            "Passport fees and payment methods",
            "Check the status of an application",
            "Report a lost or stolen passport",
            "Passport photo requirements",
            "Passports for children under 16",
            "Change or correct a passport",
            "Get a passport urgently",
            "The passport card",
            "Passport help and contact details",
        ),
    ),
    (
        "Visas",
        (
            "Visas for study and exchange",
            "Visas for temporary workers",
            "Visitor visas for business and tourism",
            "The visa waiver programme",
            "Immigrant visas for family members",
            "Visa appointment wait times",
            "Visa fees and reciprocity tables",
            "Find a visa office abroad",
            "Check the status of a visa",
            "Visa help and frequently asked questions",
        ),
    ),
    (
        "International travel",
        (
            "Before you go: a checklist",
            "Travel insurance",
            "Travelling with pets",
            "Travelling with medicines",
            "Students abroad",
            "Older travellers",
            "Women travellers",
            "LGBTQI+ travellers",
            "Travellers with disabilities",
            "Cruise ship passengers",
            "High-risk areas",
            "Register your trip with the embassy",
        ),
    ),
    (
        "While abroad",
        (
            "Arrest or detention",
            "Death of a citizen abroad",
            "Emergency financial help",
            "Victims of crime overseas",
            "Natural disasters and crises",
            "Voting from abroad",
            "Paying taxes while living abroad",
            "Marriage and divorce abroad",
            "Births abroad",
            "Replacing documents abroad",
        ),
    ),
    (
        "Emergencies",
        (
            "Contact an embassy or consulate",
            "Crisis information for travellers",
            "Child abduction abroad",
            "Evacuations and departures",
            "Getting home in an emergency",
            "Consular help out of hours",
            "Kidnapping and hostage situations",
            "Missing persons abroad",
        ),
    ),
    (
        "About us",
        (
            "Who we are",
            "Our mission and values",
            "Press releases",
            "Reports and statistics",
            "Careers with the consular service",
            "Contact the bureau",
            "Accessibility statement",
            "Freedom of information requests",
            "Privacy notice",
        ),
    ),
)
_FOOTER_NOTES = (
    "This site is managed by the Bureau of Consular Affairs of an invented government.",
    "External links to other internet sites should not be construed as an endorsement of the views or "
    "privacy policies contained therein.",
    "The information on this site is provided for general guidance only. Travel advisories are reviewed "
    "at least once a year and whenever the security situation changes.",
    "Travellers remain responsible for their own safety. Always check the latest advisory before you "
    "travel and follow the advice of the local authorities.",
    "Content is available under an open licence, except where otherwise stated. © 2026 Bureau of "
    "Consular Affairs.",
)


def _slugify(text: str) -> str:
    kept = "".join(ch.lower() if ch.isalnum() else "-" for ch in text)
    return "-".join(part for part in kept.split("-") if part)


def _link(href: str, text: str, css: str = "nav-link") -> str:
    return f'<li class="nav-item"><a class="{css}" href="{href}">{text}</a></li>\n'


def _header(n: int) -> str:
    """The site banner, search form and mega menus; the same on every page."""
    parts = [
        '<div class="gov-banner"><p>An official website of the Bureau of Consular Affairs. '
        '<button class="gov-banner__toggle" aria-expanded="false">Here is how you know</button></p></div>\n',
        '<header class="site-header" role="banner">\n<div class="site-header__inner">\n',
        '<a class="site-logo" href="/"><img src="/static/img/logo.svg" alt="Bureau of Consular Affairs"'
        ' width="220" height="48"></a>\n',
        '<form class="site-search" action="/search" method="get" role="search">'
        '<label for="q" class="visually-hidden">Search travel advice</label>'
        '<input id="q" name="q" type="search" placeholder="Search travel advice">'
        '<button type="submit">Search</button></form>\n</div>\n',
        '<nav class="mega-menu" aria-label="Main menu">\n<ul class="mega-menu__list">\n',
    ]
    for title, entries in _MENUS:
        menu_slug = _slugify(title)
        parts.append(
            f'<li class="mega-menu__item"><button class="mega-menu__toggle" aria-controls="menu-{menu_slug}"'
            f' aria-expanded="false">{title}</button>\n<ul id="menu-{menu_slug}" class="mega-menu__panel">\n'
        )
        parts.extend(_link(f"/{menu_slug}/{_slugify(entry)}.html", entry) for entry in entries)
        parts.append("</ul></li>\n")
    parts.append(
        '<li class="mega-menu__item"><button class="mega-menu__toggle" aria-controls="menu-destinations"'
        ' aria-expanded="false">Travel advisories</button>\n'
        '<ul id="menu-destinations" class="mega-menu__panel">\n'
    )
    for index in range(1, min(n, 150) + 1):
        slug = slug_of(index, n)
        parts.append(_link(f"/advice/{slug}.html", country_name(slug), "nav-link nav-link--destination"))
    parts.append(_link("/advice/", "All destinations A to Z"))
    parts.append("</ul></li>\n</ul>\n</nav>\n</header>\n")
    return "".join(parts)


def _footer() -> str:
    """Link columns, notes and the licence; the same on every page."""
    parts = ['<footer class="site-footer" role="contentinfo">\n<div class="site-footer__columns">\n']
    for title, entries in _MENUS:
        parts.append(
            f'<div class="site-footer__column"><h2 class="site-footer__heading">{title}</h2>\n<ul>\n'
        )
        parts.extend(
            _link(f"/{_slugify(title)}/{_slugify(entry)}.html", entry, "footer-link") for entry in entries
        )
        parts.append("</ul></div>\n")
    parts.append('</div>\n<div class="site-footer__notes">\n')
    parts.extend(f"<p>{note}</p>\n" for note in _FOOTER_NOTES)
    parts.append(
        '</div>\n<ul class="site-footer__social">'
        '<li><a href="https://social.example/consular">Follow us</a></li>'
        '<li><a href="/rss/">RSS feeds</a></li>'
        '<li><a href="/email-alerts/">Email alerts</a></li></ul>\n</footer>\n'
        '<script src="/static/js/site.js" defer></script>\n'
        '<script src="/static/js/analytics.js" defer></script>\n'
    )
    return "".join(parts)


def _head(country: str, level: int, updated: dt.date) -> str:
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{country} Travel Advisory</title>\n"
        f'<meta name="description" content="Travel advisory for {country}: '
        f'Level {level}, {LEVELS[level]}.">\n'
        f'<meta name="dcterms.modified" content="{updated.isoformat()}">\n'
        '<link rel="stylesheet" href="/static/css/site.css">\n'
        '<link rel="stylesheet" href="/static/css/advisory.css">\n'
        '<link rel="icon" href="/favicon.ico">\n'
        "</head>\n"
        '<body class="page page--advisory">\n'
        '<a class="skip-link" href="#main">Skip to main content</a>\n'
    )


@dataclass(frozen=True)
class _Site:
    """Everything a page shares with the others, built once per run."""

    seed: int
    n: int
    header: str
    footer: str
    budget: int


def _site(seed: int, n: int) -> _Site:
    header, footer = _header(n), _footer()
    # About 1.5 KB of head, breadcrumbs, title block and aside besides the sections.
    budget = PAGE_TARGET_BYTES - len(header) - len(footer) - 1_500
    return _Site(seed=seed, n=n, header=header, footer=footer, budget=budget)


# --- rendering ----------------------------------------------------------------------------------


def _page(site: _Site, index: int, state: _CountryState) -> str:
    slug = slug_of(index, site.n)
    country = country_name(slug)
    body = _body(site.seed, index, country, site.budget)
    level, updated = state["level"], dt.date.fromisoformat(state["updated"])
    parts = [
        _head(country, level, updated),
        site.header,
        '<nav class="breadcrumbs" aria-label="Breadcrumb"><ol><li><a href="/">Home</a></li>'
        '<li><a href="/advice/">Travel advisories</a></li>'
        f'<li aria-current="page">{country}</li></ol></nav>\n',
        f'<main id="main" class="advisory">\n<article>\n<h1>{country} Travel Advisory</h1>\n',
        f'<p class="advisory__updated">Last updated: {long_date(updated)}</p>\n',
        f'<div class="advisory__level advisory__level--{level}">'
        f"<p>Level {level}: {LEVELS[level]}</p></div>\n",
        f'<p class="advisory__intro">{_intro(country, level, body.reasons)}</p>\n',
    ]
    for section_id, heading, paragraphs in body.sections:
        parts.append(f'<section id="{section_id}">\n<h2>{heading}</h2>\n')
        if section_id == "safety-and-security":
            parts.extend(f'<p class="advisory__event">{event}</p>\n' for event in reversed(state["events"]))
        parts.extend(paragraphs)
        parts.append("</section>\n")
    parts.append(
        "</article>\n"
        '<aside class="related"><h2>Related</h2><ul>'
        f'<li><a href="/api/content/foreign-travel-advice/{slug}">Machine-readable advice</a></li>'
        '<li><a href="/feed.xml">All advisories (RSS)</a></li>'
        '<li><a href="/email-alerts/">Get email alerts</a></li></ul>'
        '<form class="feedback"><p>Was this page useful?</p>'
        '<button name="useful" value="yes">Yes</button><button name="useful" value="no">No</button></form>'
        "</aside>\n</main>\n"
    )
    parts.append(site.footer)
    parts.append("</body>\n</html>\n")
    return "".join(parts)


def _published(slug: str, day: dt.date) -> dt.datetime:
    """A publication time on ``day``, fixed per slug and day."""
    minutes = _rng("time", slug, day).randint(8 * 60, 18 * 60)
    return dt.datetime.combine(day, dt.time(minutes // 60, minutes % 60), tzinfo=dt.UTC)


def _api_item(site: _Site, index: int, state: _CountryState) -> str:
    slug = slug_of(index, site.n)
    country = country_name(slug)
    body = _body(site.seed, index, country, site.budget // 4)
    level = state["level"]
    published = _published(slug, dt.date.fromisoformat(state["updated"]))
    sections = {section_id: (heading, paras) for section_id, heading, paras in body.sections}
    advice = _FCDO_ADVICE[level].format(country=country)
    latest = state["events"][-1] if state["events"] else "Safety and security information has been reviewed."
    events = "".join(f"<p>{event}</p>\n" for event in reversed(state["events"]))

    def part(title: str, part_slug: str, section_ids: Iterable[str], lead: str = "") -> dict[str, str]:
        html = [lead]
        for section_id in section_ids:
            heading, paras = sections[section_id]
            html.append(f'<h2 id="{section_id}">{heading}</h2>\n')
            html.extend(paras)
        return {"title": title, "slug": part_slug, "body": "".join(html)}

    item: dict[str, Any] = {
        "base_path": f"/foreign-travel-advice/{slug}",
        "content_id": str(uuid.uuid5(uuid.NAMESPACE_URL, f"{SITE}/foreign-travel-advice/{slug}")),
        "document_type": "travel_advice",
        "schema_name": "travel_advice",
        "locale": "en",
        "title": f"{country} travel advice",
        "description": f"FCDO travel advice for {country}. Includes safety and security, insurance, "
        "entry requirements and legal differences.",
        "first_published_at": "2013-03-19T00:00:00+00:00",
        "public_updated_at": published.isoformat(),
        "updated_at": published.isoformat(),
        "details": {
            "country": {"name": country, "slug": slug, "synonyms": []},
            "summary": f"<p>{advice}</p>\n<p>{latest}</p>\n",
            "change_description": f"Latest update: {latest}",
            "alert_status": _ALERT_STATUS[level],
            "reviewed_at": published.isoformat().replace("+00:00", "Z"),
            "updated_at": published.isoformat().replace("+00:00", "Z"),
            "email_signup_link": f"/foreign-travel-advice/{slug}/email-signup",
            "max_cache_time": 10,
            "parts": [
                part("Warnings and insurance", "warnings-and-insurance", (), f"<p>{advice}</p>\n"),
                part("Entry requirements", "entry-requirements", ("entry-requirements",)),
                part(
                    "Safety and security",
                    "safety-and-security",
                    ("safety-and-security", "terrorism", "local-laws-and-customs", "natural-disasters"),
                    events,
                ),
                part("Health", "health", ("health",)),
                part("Getting help", "getting-help", ("getting-help",)),
            ],
        },
    }
    return json.dumps(item, ensure_ascii=False, indent=2) + "\n"


def _feed_item(site: _Site, position: int, states: dict[str, _CountryState]) -> str:
    index = position % site.n + 1
    repeat = position // site.n
    slug = slug_of(index, site.n)
    country = country_name(slug)
    state = states[slug]
    level = state["level"]
    body = _body(site.seed, index, country, 3_000)
    link = f"{SITE}/advice/{slug}.html"
    guid = link if repeat == 0 else f"{link}#{repeat + 1}"
    events = "".join(f"<p>{event}</p>\n" for event in reversed(state["events"]))
    recent = f"<h5><b>Recent events</b></h5>\n{events}" if events else ""
    details = "".join(
        f"<h5><b>{heading}</b></h5>\n{paras[0]}" for _, heading, paras in body.sections[:3] if paras
    )
    listed = ", ".join(body.reasons)
    description = (
        f"{LEVELS[level]}<p>in <b>{country}</b> due to <b>{listed}</b>. Some areas have increased risk. "
        f"Read the entire Travel Advisory.</p>\n{recent}{details}"
    )
    title = f"{country} - Level {level}: {LEVELS[level].title()}"
    published = format_datetime(_published(slug, dt.date.fromisoformat(state["updated"])), usegmt=True)
    return (
        "    <item>\n"
        f"      <title>{title}</title>\n"
        f"      <link>{link}</link>\n"
        f"      <pubDate>{published}</pubDate>\n"
        f"      <description><![CDATA[{description}]]></description>\n"
        f'      <guid isPermaLink="{"true" if repeat == 0 else "false"}">{guid}</guid>\n'
        "    </item>\n"
    )


def _feed(site: _Site, states: dict[str, _CountryState]) -> str:
    items = [_feed_item(site, position, states) for position in range(FEED_ITEMS)]
    slugs = {slug_of(position % site.n + 1, site.n) for position in range(FEED_ITEMS)}
    newest = max(_published(slug, dt.date.fromisoformat(states[slug]["updated"])) for slug in slugs)
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<rss xmlns:dc="http://purl.org/dc/elements/1.1/" version="2.0">\n'
        "  <channel>\n"
        "    <title>Bureau of Consular Affairs: Travel Advisories</title>\n"
        f"    <link>{SITE}/advice/</link>\n"
        "    <description>As a first step in planning any trip abroad, check the Travel Advisories for "
        "your intended destination.</description>\n"
        f"    <pubDate>{format_datetime(newest, usegmt=True)}</pubDate>\n"
        f"    <dc:date>{newest.isoformat().replace('+00:00', 'Z')}</dc:date>\n"
        + "".join(items)
        + "  </channel>\n</rss>\n"
    )


# --- files --------------------------------------------------------------------------------------


def _page_path(root: Path, slug: str) -> Path:
    return root / "advice" / f"{slug}.html"


def _item_path(root: Path, slug: str) -> Path:
    return root / "api" / "content" / "foreign-travel-advice" / f"{slug}.json"


def _api_count(n: int) -> int:
    return min(n, API_ITEMS)


def _fixtures(root: Path, n: int) -> Fixtures:
    slugs = [slug_of(index, n) for index in range(1, n + 1)]
    return Fixtures(
        root=root,
        pages=tuple(_page_path(root, slug) for slug in slugs),
        items=tuple(_item_path(root, slug) for slug in slugs[: _api_count(n)]),
        feed=root / "feed.xml",
    )


def _initial_state(seed: int, slug: str) -> _CountryState:
    rng = _rng("state", seed, slug)
    level = rng.choices((1, 2, 3, 4), weights=(40, 35, 15, 10))[0]
    updated = _FIRST_DATE + dt.timedelta(days=rng.randint(0, (_LAST_DATE - _FIRST_DATE).days))
    return {"level": level, "updated": updated.isoformat(), "events": []}


def _save_state(root: Path, seed: int, n: int, states: dict[str, _CountryState], mutations: int) -> None:
    data = {"seed": seed, "n": n, "mutations": mutations, "countries": states}
    _replace(root / STATE_FILE, json.dumps(data, separators=(",", ":")).encode())


def _load_state(root: Path) -> tuple[int, int, dict[str, _CountryState], int]:
    data = json.loads((root / STATE_FILE).read_text(encoding="utf-8"))
    return int(data["seed"]), int(data["n"]), data["countries"], int(data.get("mutations", 0))


def _replace(path: Path, data: bytes) -> bool:
    """Write ``data`` atomically unless the file already holds it; a rewritten file's mtime moves
    to a later second than before. Returns whether the file changed."""
    try:
        before = path.stat().st_mtime_ns
        if path.read_bytes() == data:
            return False
    except FileNotFoundError:
        before = None
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_bytes(data)
    tmp.replace(path)
    if before is not None:
        old_second = before // 1_000_000_000
        if path.stat().st_mtime_ns // 1_000_000_000 <= old_second:
            later = (old_second + 1) * 1_000_000_000
            os.utime(path, ns=(later, later))
    return True


def _remove_previous(root: Path) -> None:
    """Delete the pages and items of an earlier generation in ``root``, if any."""
    if not (root / STATE_FILE).exists():
        return
    _, old_n, _, _ = _load_state(root)
    old = _fixtures(root, old_n)
    for path in (*old.pages, *old.items):
        path.unlink(missing_ok=True)


# --- public API ---------------------------------------------------------------------------------


def generate(out: Path, n: int, *, seed: int = 1) -> Fixtures:
    """Write n pages, min(n, 200) JSON items and a 200-item feed under ``out``; same input, same bytes."""
    if n < 1:
        raise ValueError("n must be at least 1")
    out = Path(out)
    _remove_previous(out)
    fixtures = _fixtures(out, n)
    fixtures.pages[0].parent.mkdir(parents=True, exist_ok=True)
    fixtures.items[0].parent.mkdir(parents=True, exist_ok=True)
    site = _site(seed, n)
    states = {slug: _initial_state(seed, slug) for slug in fixtures.slugs}
    for index, path in enumerate(fixtures.pages, start=1):
        path.write_bytes(_page(site, index, states[path.stem]).encode())
    for index, path in enumerate(fixtures.items, start=1):
        path.write_bytes(_api_item(site, index, states[path.stem]).encode())
    fixtures.feed.write_bytes(_feed(site, states).encode())
    _save_state(out, seed, n, states, mutations=0)
    return fixtures


def load(root: Path) -> Fixtures:
    """The fixtures an earlier ``generate`` wrote in ``root``."""
    _, n, _, _ = _load_state(Path(root))
    return _fixtures(Path(root), n)


def _mutate_state(state: _CountryState, places: _Places, rng: random.Random) -> _CountryState:
    """A later date, a new dated event and, sometimes, a level one step up or down."""
    old = dt.date.fromisoformat(state["updated"])
    updated = old + dt.timedelta(days=rng.randint(1, 21))
    event_day = old + dt.timedelta(days=rng.randint(1, (updated - old).days))
    level = state["level"]
    roll = rng.random()
    if roll < 0.3 and level < 4:
        level += 1
    elif roll < 0.5 and level > 1:
        level -= 1
    return {
        "level": level,
        "updated": updated.isoformat(),
        "events": [*state["events"], _event(rng, places, event_day)],
    }


def mutate(fixtures: Fixtures | Path, fraction: float, *, seed: int) -> list[str]:
    """Change the advisory of round(fraction * n) pages picked by ``seed``; returns their slugs.

    Each picked page gets a new dated event in its safety section, a later "Last updated" date and
    sometimes a new level; its JSON item and feed items follow. Nothing else is rewritten.
    """
    if not 0.0 <= fraction <= 1.0:
        raise ValueError("fraction must be between 0 and 1")
    root = fixtures.root if isinstance(fixtures, Fixtures) else Path(fixtures)
    gen_seed, n, states, mutations = _load_state(root)
    site = _site(gen_seed, n)
    current = _fixtures(root, n)
    chosen = sorted(_rng("pick", seed).sample(range(1, n + 1), round(fraction * n)))
    slugs = [slug_of(index, n) for index in chosen]
    for index, slug in zip(chosen, slugs, strict=True):
        places = _body(gen_seed, index, country_name(slug), 0).places
        states[slug] = _mutate_state(states[slug], places, _rng("mutate", seed, mutations, slug))
        _replace(_page_path(root, slug), _page(site, index, states[slug]).encode())
        if index <= _api_count(n):
            _replace(_item_path(root, slug), _api_item(site, index, states[slug]).encode())
    _replace(current.feed, _feed(site, states).encode())
    _save_state(root, gen_seed, n, states, mutations + 1)
    return slugs


# --- command line -------------------------------------------------------------------------------


def _timed(action: Callable[[], object]) -> float:
    start = time.perf_counter()
    action()
    return time.perf_counter() - start


def main(argv: Sequence[str] | None = None) -> int:
    """Generate (or mutate) fixtures in OUT_DIR and print what was done and how long it took."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("out_dir", type=Path, metavar="OUT_DIR")
    parser.add_argument("--n", type=int, default=1000, help="number of pages (default 1000)")
    parser.add_argument("--seed", type=int, default=1, help="generation seed, or mutation seed with --mutate")
    parser.add_argument("--mutate", type=float, metavar="FRACTION", help="change this fraction of the pages")
    args = parser.parse_args(argv)
    out: Path = args.out_dir
    if args.mutate is None or not (out / STATE_FILE).exists():
        took = _timed(lambda: generate(out, args.n, seed=args.seed))
        print(f"generated {args.n} pages, {_api_count(args.n)} JSON items and a feed in {out} ({took:.2f} s)")
    if args.mutate is not None:
        changed: list[str] = []
        took = _timed(lambda: changed.extend(mutate(out, args.mutate, seed=args.seed)))
        print(f"changed {len(changed)} of {len(load(out).pages)} pages ({took:.2f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
