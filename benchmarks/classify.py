"""Time the text classifier on a typical change: ``python benchmarks/classify.py [-n N]``.

Prints the median and 95th percentile, in milliseconds, of ``classify_texts`` on

* a long advisory page (about 60 KB of text) where a few sentences changed (an attack
  added, a phone number edited, the date line moved);
* a short carrier notice (about 1 KB) where the suspension was reversed.

Every run classifies from scratch: the cache of recent results (which lets the pipeline ask
about the same change twice for free) is cleared before each one. The rules are loaded once,
before timing, as in a running monitor. See benchmarks/README.md for measured figures.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

from monitor.classify import classify_texts
from monitor.rules import builtin_rules
from monitor.textsignals import clear_cache

_REGIONS = (
    "Kayes",
    "Koulikoro",
    "Sikasso",
    "Ségou",
    "Mopti",
    "Tombouctou",
    "Gao",
    "Kidal",
    "Ménaka",
    "Taoudénit",
)
_TOPICS = (
    "Violent crime, including kidnapping and armed robbery, is common in {region}, especially at night.",
    "Roadblocks and random police checkpoints are frequent on the roads around {region}.",
    "Public transport in {region} is unreliable and vehicles are often poorly maintained.",
    "Health facilities in {region} are limited; carry a supply of the medicines you need.",
    "Flooding may affect travel around {region} during the rainy season from June to October.",
    "Local laws in {region} reflect the fact that it is a predominantly Muslim region.",
    "Contact the embassy in Bamako on +223 20 70 23 {number:02d} if you need consular help in {region}.",
    "Carry a copy of your passport and visa at all times when you travel to {region}.",
)


def advisory_page(target_bytes: int = 60_000) -> str:
    """A long advisory page: a heading, a level statement, then paragraphs about regions."""
    lines = [
        "Mali - Level 4: Do Not Travel",
        "Updated: October 24, 2025",
        "Do not travel to Mali for any reason due to crime, terrorism, kidnapping and armed conflict.",
    ]
    number = 0
    while sum(len(line) + 1 for line in lines) < target_bytes:
        for region in _REGIONS:
            for topic in _TOPICS:
                number += 1
                lines.append(topic.format(region=region, number=number % 100) + f" (note {number}.)")
    return "\n".join(lines)


def typical_change(page: str) -> str:
    """The same page, a few sentences changed: the kind of edit a poll usually finds."""
    lines = page.split("\n")
    lines[1] = "Updated: October 30, 2025"
    lines[40] = lines[40].replace("+223 20 70 23", "+223 20 70 24")
    lines.insert(3, "On October 28, militants attacked a fuel convoy near Kayes, killing several drivers.")
    return "\n".join(lines)


_NOTICE_BEFORE = "\n".join(
    (
        "Intermodal Notice MALI – Temporary Service Suspension",
        "Customer Advisory, 4 November 2025",
        "Dear Customers, due to the security situation, road transportation of cargo destined for Mali "
        "via all PODs, including Abidjan, Dakar, Tema and Conakry, is temporarily suspended until "
        "further notice.",
        "No new bookings will be accepted for Mali. Cargo already in transit will be handled under "
        "clause 10 of our bill of lading.",
        "We thank you for your understanding.",
    )
)

_NOTICE_AFTER = "\n".join(
    (
        "Intermodal Notice MALI – Update",
        "Customer Advisory, 6 November 2025",
        "Dear Customers, overland transport to Mali remains heavily impacted in terms of both transit "
        "times and costs.",
        "CMA CGM has nevertheless decided not to suspend its activities to Mali, including overland "
        "transport.",
        "We thank you for your understanding.",
    )
)


def measure(label: str, run: Callable[[], object], repeat: int) -> list[float]:
    timings = []
    for _ in range(repeat):
        clear_cache()
        start = time.perf_counter()
        run()
        timings.append((time.perf_counter() - start) * 1000)
    timings.sort()
    p95 = timings[min(len(timings) - 1, round(0.95 * (len(timings) - 1)))]
    print(f"{label:<44} median {statistics.median(timings):7.2f} ms   p95 {p95:7.2f} ms   (n={repeat})")
    return timings


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=200, help="classifications per case (default 200)")
    repeat = parser.parse_args(argv).n
    builtin_rules()  # loaded once in a running monitor: not part of a classification
    page = advisory_page()
    changed = typical_change(page)
    result = classify_texts("ministry", "ML", page, changed)
    size, count = len(page.encode()) / 1000, page.count("\n") + 1
    print(f"long page: {size:.1f} KB, {count} lines; the change is {result.change_class}")
    measure(
        "long advisory page, a few sentences changed",
        lambda: classify_texts("ministry", "ML", page, changed),
        repeat,
    )
    measure(
        "short carrier notice, suspension reversed",
        lambda: classify_texts("carrier", "ML", _NOTICE_BEFORE, _NOTICE_AFTER),
        repeat,
    )


if __name__ == "__main__":
    main()
