"""The user's own rules: paragraphs that must be kept or dropped whatever the model says, for all pages or
for one site or one kind of JSON Lines record. Applied after the model; every decision they take is recorded
(``Paragraph.decided_by`` is ``rule:<name>``).

A rules file is TOML::

    [[rule]]
    name = "newsletter-box"          # shown in decided_by
    action = "drop"                  # or "keep"
    match = "(?i)^jetzt .*newsletter" # a regular expression searched in the paragraph, or:
    # line = "Weitere Artikel"       # the paragraph's whole text
                                     # (both see the paragraph as a reader does: ``reader_line``)
    label = "promotional"            # optional, for "drop": the label to give (default: the model's best
                                     # label other than editorial)
    site = "example.org"             # optional: only pages of this host (and its subdomains) or folder
    field = "feed"                   # optional, JSON Lines: only records whose field ...
    value = "boersen-ticker"         # ... has this value
"""

from __future__ import annotations

import os
import re
import sys

from detector.features import reader_text
from detector.pages import LABELS, shown

TYPE_CHECKING = False  # typing.TYPE_CHECKING, without importing typing at run time (see _named_tuple)
if TYPE_CHECKING:
    from pathlib import Path
    from typing import NamedTuple

    from detector.api import Paragraph
else:
    from detector._named_tuple import NamedTuple

_KEYS = {"name", "action", "match", "line", "label", "site", "field", "value"}
# The patterns are strings, compiled on first use through re's cache: a run without rules never needs them, and
# compiling every pattern of the package at import took a tenth of a one-page run's start.
_SPACE = r"\s+"
_CONTROL = r"[\x00-\x1f\x7f-\x9f\u2028\u2029]"
MAX_RULES_BYTES = 4 * 1024 * 1024  # a rules file is a few hundred lines; more is a wrong file (/dev/zero)


class RulesError(ValueError):
    """A rules file that cannot be used; the message names the file, the rule and what is wrong."""


class Rule(NamedTuple):
    """One rule: what it matches, what it decides, and where it applies."""

    name: str
    action: str
    pattern: re.Pattern[str] | None = None
    line: str | None = None
    label: str | None = None
    site: str | None = None
    field: str | None = None
    value: str | None = None

    def applies(self, site: str | None, record: dict | None) -> bool:
        if self.site is not None:
            site = site_name(site)  # a host as hosts are compared; a folder is matched in any case too
            if not (site == self.site or site.endswith("." + self.site)):
                return False
        if self.field is not None:
            return (
                record is not None
                and self.value is not None
                and _field_matches(record.get(self.field), self.value)
            )
        return True

    def matches(self, line: str) -> bool:
        """Whether the rule matches a paragraph given as ``reader_line`` makes it."""
        if self.pattern is not None:
            return self.pattern.search(line) is not None
        return line == self.line


def pattern_text(pattern: str) -> str:
    """A ``match`` pattern read as paragraphs are read (``reader_line``), so that it means what the user sees:
    an entity or a fullwidth character read as the character it stands for, and that character literal
    (``Echtzeit&quest;`` and ``deutlich？`` were a quantifier, ``Preis（netto）`` a group), and its white space
    one space, as a paragraph's is (a pattern copied with a no-break space or a line break matched nothing)."""
    literal = reader_text(re.sub(_LITERAL, lambda m: re.escape(reader_text(m.group(0))), pattern))
    if re.match(r"\(\?[aiLmsux]*x", literal):  # verbose: its white space and line ends are the pattern's own
        return literal
    return re.sub(_SPACE, " ", literal)


# What reading a pattern would turn into characters that regular expressions read as syntax
_LITERAL = r"&(?:[A-Za-z][A-Za-z0-9]{1,31}|#[0-9]{1,7}|#[xX][0-9A-Fa-f]{1,6});|[\uff01-\uff5e]"


def reader_line(text: str) -> str:
    """A paragraph as rules see it: as a reader sees it (``features.reader_text``: soft hyphens and zero-width
    characters gone, letters composed) on one line, its white space collapsed (a paragraph a scraper wrapped
    over several lines, as text pages keep them, is the paragraph an HTML page gives)."""
    return re.sub(_SPACE, " ", reader_text(text)).strip()


_DOTS = {0x3002: ".", 0xFF0E: ".", 0xFF61: "."}  # UTS 46 maps them to a dot, as browsers do


def site_name(name: str | None) -> str:
    """A host or a folder name as sites are compared: lower case, letters composed, an internationalised domain
    name in its ASCII form (``börse-müller.de`` is ``xn--brse-mller-ecb1f.de``, as crawlers write it), without
    ``www.`` (of a host below a domain) and a final dot. The ideographic full stops browsers read as dots are
    dots (``example。org``)."""
    site = reader_text((name or "").strip()).lower().translate(_DOTS).rstrip(".")
    if site.startswith("www.") and "." in site[4:]:  # (www.de is the host of the domain www.de)
        site = site[4:]
    if site.isascii():
        return site
    if not all(0 < len(label) <= 63 for label in site.split(".")):  # not a host name: as it is (checked before
        return site  # the encoding, whose time grows with the square of a label's length, never shorter)
    labels = [
        label if label.isascii() else "xn--" + label.encode("punycode").decode("ascii")
        for label in site.split(".")
    ]
    if not all(0 < len(label) <= 63 for label in labels):
        return site
    # Each label as IDNA 2008 and browsers write it (UTS 46, nontransitional): "straße" is xn--strae-oqa, not
    # "strasse" as Python's own codec (IDNA 2003) has it, which is another domain
    return ".".join(labels)


def _field_matches(value: object, wanted: str) -> bool:
    """Whether a record's field holds a rule's ``value``: a string that is it, or a number equal to it as a
    number ("7" matches 7 and 7.0, "1E5" matches 100000, "1.10" matches 1.1). A field that is missing, null,
    true/false, a list or an object matches no value (``str()`` made them "None" or "True", which a rule's
    value could match by accident)."""
    if isinstance(value, str):
        return value == wanted
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        if str(value) == wanted:
            return True
        if not re.fullmatch(_NUMBER, wanted):  # float() also took "1_000" and " 7 "
            return False
        if isinstance(value, int):  # exactly: as floats, ids above 2**53 matched their neighbours
            from decimal import Decimal

            return Decimal(wanted) == value
        try:
            return float(wanted) == value
        except OverflowError:
            return False
    return False


_NUMBER = r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?"


_NOT_IN_A_SITE = r"[/:*?@\[\]\\]"  # a url, a path, a port, a wildcard, user info (a folder
# name may hold spaces)


def _site(value: str | None, where: str) -> str | None:
    """A rule's site as sites are compared (``site_name``); a url, a path, a port or a wildcard is refused: a
    site is a bare host (its subdomains match too) or a folder name."""
    if value is None:
        return None
    if re.search(_NOT_IN_A_SITE, value.strip()):
        raise RulesError(
            f"{where}: site must be a host (example.org, which matches its subdomains too) or a folder name, "
            f"not {value.strip()!r}"
        )
    site = site_name(value)
    if site == "":
        raise RulesError(f"{where}: an empty site")
    return site


def load_rules(*paths: Path | str) -> tuple[Rule, ...]:
    """Read and check one or more rules files, the first file's rules first; raises RulesError with a
    one-line reason. Every rule's name, given or ``rule-N`` (numbered across the files), is its own, in
    ``decided_by`` too: the unnamed rules of two files were both ``rule-1``, a keep and a drop rule."""
    files = [_entries(path) for path in paths]
    used: set[str] = set()
    for name, entries in files:
        for entry in entries:
            given = entry.get("name") if isinstance(entry, dict) else None
            if isinstance(given, str) and given:  # (a name that is no string: _rule says what is wrong)
                if given in used:
                    raise RulesError(f"{name}: two rules are named {given!r}")
                used.add(given)
    rules: list[Rule] = []
    for name, entries in files:
        for number, entry in enumerate(entries, 1):
            default = f"rule-{len(rules) + 1}"
            while default in used:  # a rule named rule-2 before the second, unnamed one
                default += "'"
            if not (isinstance(entry, dict) and entry.get("name")):
                used.add(default)
            rules.append(_rule(entry, number, name, default))
    return tuple(rules)


def _entries(path: Path | str) -> tuple[str, list]:
    """A rules file's name as messages show it and its ``[[rule]]`` tables, unchecked."""
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover - Python 3.10
        import tomli as tomllib  # type: ignore[import-not-found, unused-ignore]
    from pathlib import Path  # here, not at the top: only --rules needs it

    path = Path(path)
    name = shown(path)  # a newline or an escape sequence in a file name is not written as it is
    raw = b""
    try:
        raw = _read(path, name)
        data = tomllib.loads(raw.decode("utf-8-sig"))  # a BOM is no TOML statement
    except OSError as exc:
        raise RulesError(f"{name}: {(exc.strerror or str(exc)).lower()}") from None
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise RulesError(f"{name}: not UTF-8 text (byte 0x{raw[exc.start]:02x} on line {line})") from None
    except tomllib.TOMLDecodeError as exc:
        raise RulesError(f"{name}: not valid TOML ({exc})") from None
    except RecursionError:
        raise RulesError(f"{name}: nested too deeply to be read") from None
    entries = data.get("rule")
    if not isinstance(entries, list) or not entries or set(data) != {"rule"}:
        raise RulesError(f"{name}: expected one or more [[rule]] tables and nothing else")
    return name, entries


def _read(path: Path, name: str) -> bytes:
    """The rules file's bytes: a regular file or a pipe (``--rules <(…)``), at most ``MAX_RULES_BYTES``."""
    import stat

    with open(path, "rb") as handle:
        mode = os.fstat(handle.fileno()).st_mode
        if not (stat.S_ISREG(mode) or stat.S_ISFIFO(mode)):
            raise RulesError(f"{name}: not a regular file")
        data = handle.read(MAX_RULES_BYTES + 1)
    if len(data) > MAX_RULES_BYTES:
        raise RulesError(f"{name}: larger than {MAX_RULES_BYTES // (1024 * 1024)} MB, not a rules file")
    return data


def _rule(entry: object, number: int, path: str, default: str) -> Rule:
    where = f"{path}: rule {number}"
    if not isinstance(entry, dict):
        raise RulesError(f"{where}: not a table")
    unknown = set(entry) - _KEYS
    if unknown:
        raise RulesError(f"{where}: unknown key {sorted(unknown)[0]!r} (known: {', '.join(sorted(_KEYS))})")
    for key, value in entry.items():
        if not isinstance(value, str):
            shown_name = f" {entry['name']!r}" if isinstance(entry.get("name"), str) else ""
            raise RulesError(f"{where}{shown_name}: {key} must be a string, not {_toml_kind(value)}")
    if "name" in entry and (not entry["name"].strip() or re.search(_CONTROL, entry["name"])):
        raise RulesError(f"{where}: a name must be a line of visible text")
    name = entry.get("name") or default
    # an unnamed rule by its place in its file too: its name is numbered across the files (b.toml: rule 'rule-4'
    # of a file of two rules)
    where = f"{path}: rule {name!r}" if entry.get("name") else f"{where} ({name!r})"
    action = entry.get("action")
    if action not in ("keep", "drop"):
        raise RulesError(f"{where}: action must be 'keep' or 'drop'")
    if ("match" in entry) == ("line" in entry):
        raise RulesError(f"{where}: give exactly one of 'match' (a regular expression) or 'line'")
    if entry.get("match") == "" or ("line" in entry and not reader_line(entry["line"])):
        raise RulesError(
            f"{where}: an empty {'match' if 'match' in entry else 'line'} (it would match every paragraph or none)"
        )
    pattern = None
    if "match" in entry:
        try:
            pattern = re.compile(pattern_text(entry["match"]))  # as paragraphs are read: letters composed, …
        except re.error as exc:
            raise RulesError(f"{where}: bad regular expression ({exc})") from None
        except (RecursionError, OverflowError) as exc:  # nested 5,000 deep; a{4294967296}
            why = "nested too deeply" if isinstance(exc, RecursionError) else "with a repeat count too large"
            raise RulesError(f"{where}: regular expression {why}") from None
        try:
            everything = _matches_every_probe_empty(pattern)
        except _SlowPattern:
            raise RulesError(
                f"{where}: the pattern took more than {PROBE_SECONDS:g} s on one ordinary sentence (nested "
                "repetition such as (\\w+\\s?)+ backtracks exponentially): it would hold up every page"
            ) from None
        if everything:  # (?i)newsletter|, x*, \b(abo|)\b
            raise RulesError(
                f"{where}: the regular expression matches an empty text, so it would match every paragraph"
            )
    label = entry.get("label")
    if label is not None and (label not in LABELS or (action == "drop") == (label == "editorial")):
        raise RulesError(f"{where}: label must be promotional or navigational for 'drop' (editorial for 'keep')")
    if ("field" in entry) != ("value" in entry):
        raise RulesError(f"{where}: 'field' and 'value' go together")
    line = reader_line(entry["line"]) if "line" in entry else None
    site = _site(entry.get("site"), where)
    return Rule(name, action, pattern, line, label, site, entry.get("field"), entry.get("value"))


# Ordinary article sentences: a pattern that matches an empty text in each of them matches every paragraph
# (a text of no letters let "\b(newsletter|)\b" through, which dropped every paragraph, and refused
# "^(?!.*[a-zäöüß])", a rule for paragraphs in capitals)
PROBES = (
    "Die Aktie stieg am Montag um drei Prozent.",
    "Der Vorstand bestätigte die Ziele für das laufende Jahr.",
    "Analysten hatten mit einem geringeren Ergebnis gerechnet.",
)


PROBE_SECONDS = 2.0  # the longest a rule's pattern may take on one probe (where an alarm can tell)


class _SlowPattern(Exception):
    """A pattern's probe ran over ``PROBE_SECONDS``."""


def _slow_pattern(signum: int, frame: object) -> None:
    raise _SlowPattern


def _matches_every_probe_empty(pattern: re.Pattern[str]) -> bool:
    """Whether the pattern's first match in every probe is an empty one; raises _SlowPattern when it runs over
    ``PROBE_SECONDS`` (timed in the main thread where no one else has an alarm set: a pattern with nested
    repetition took 22 s to 66 s on the probes, before any page was read and without a word, ``--timeout``
    or not)."""
    import signal
    import threading

    timed = (
        hasattr(signal, "setitimer")
        and threading.current_thread() is threading.main_thread()
        and signal.getsignal(signal.SIGALRM) is signal.SIG_DFL
        and signal.getitimer(signal.ITIMER_REAL)[0] == 0
    )
    if timed:
        signal.signal(signal.SIGALRM, _slow_pattern)
    try:
        for probe in PROBES:
            if timed:
                signal.setitimer(signal.ITIMER_REAL, PROBE_SECONDS)
            if not _empty_match(pattern, probe):
                return False
        return True
    finally:
        if timed:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, signal.SIG_DFL)


def _empty_match(pattern: re.Pattern[str], text: str) -> bool:
    """Whether the pattern's first match in the text is an empty one."""
    found = pattern.search(text)
    return found is not None and found.end() == found.start()


def _toml_kind(value: object) -> str:
    kinds = {bool: "a boolean", int: "a number", float: "a number", list: "an array", dict: "a table"}
    return kinds.get(type(value), "a date or time")


def active_rules(rules: tuple[Rule, ...], site: str | None = None, record: dict | None = None) -> list[Rule]:
    """The rules that apply to a page of this site (and JSON Lines record)."""
    return [rule for rule in rules if rule.applies(site, record)]


def decide(p: Paragraph, active: list[Rule]) -> Paragraph:
    """A paragraph with the decision of the first matching rule taken (unchanged when none matches)."""
    line = reader_line(p.text)
    rule = next((r for r in active if r.matches(line)), None)
    if rule is None:
        return p
    if rule.action == "keep":
        label = "editorial"
    else:
        others = {k: v for k, v in p.probabilities.items() if k != "editorial"}
        label = rule.label or max(others, key=others.__getitem__)
    return p._replace(label=label, decided_by=f"rule:{rule.name}")


def apply_rules(
    paragraphs: list[Paragraph], rules: tuple[Rule, ...], site: str | None = None, record: dict | None = None
) -> list[Paragraph]:
    """The paragraphs with the rules' decisions taken: the first matching rule decides a paragraph."""
    active = active_rules(rules, site, record)
    return [decide(p, active) for p in paragraphs] if active else paragraphs
