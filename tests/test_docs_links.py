"""The user documentation holds together: every relative link of README.md and docs/*.md points
to a file that exists (and its ``#anchor`` to a heading or an ``id`` there), README's
Documentation section lists every page of docs/, every alert's runbook is a section of
docs/operations.md, and every message docs/troubleshooting.md quotes is one opchain prints."""

import ast
import re
from collections.abc import Iterator
from pathlib import Path

import yaml

ROOT = Path(__file__).parents[1]
README = ROOT / "README.md"
DOCS = ROOT / "docs"
PAGES = [README, *sorted(DOCS.glob("*.md"))]
RULES = ROOT / "deploy" / "prometheus" / "rules" / "opchain.yml"  # each alert names its runbook


def runbooks() -> dict[str, str]:
    """Alert -> the runbook its annotation links to (``docs/operations.md#anchor``)."""
    groups = yaml.safe_load(RULES.read_text(encoding="utf-8"))["groups"]
    rules = [rule for group in groups for rule in group["rules"] if "alert" in rule]
    return {rule["alert"]: rule["annotations"]["runbook"] for rule in rules}


FENCE = re.compile(r"^(```|~~~).*?^\1\s*$", re.M | re.S)
CODE_SPAN = re.compile(r"`[^`\n]*`")
LINK = re.compile(r"\[(?:[^\[\]]|\[[^\]]*\])*\]\(([^()\s]+)(?:\s+\"[^\"]*\")?\)")
HEADING = re.compile(r"^#{1,6}\s+(.+?)\s*#*\s*$", re.M)
HTML_ID = re.compile(r"<a\s+(?:id|name)=\"([^\"]+)\"", re.I)
EXTERNAL = re.compile(r"^[a-z][a-z0-9+.-]*:", re.I)  # http:, https:, mailto:


def prose(text: str) -> str:
    """Markdown without its code: links and headings inside code are not links or headings."""
    return CODE_SPAN.sub("", FENCE.sub("", text))


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: the text of its links, lower case, punctuation dropped,
    spaces as hyphens."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading).lower()
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def anchors(page: Path) -> set[str]:
    """Every anchor a link can name in a page: its headings' (numbered when repeated, as GitHub
    does) and its explicit ``<a id="...">``s."""
    text = page.read_text(encoding="utf-8")
    found: set[str] = set(HTML_ID.findall(text))
    seen: dict[str, int] = {}
    for heading in HEADING.findall(FENCE.sub("", text)):
        base = slug(heading)
        n = seen.get(base, 0)
        seen[base] = n + 1
        found.add(base if n == 0 else f"{base}-{n}")
    return found


def links(page: Path) -> Iterator[str]:
    yield from LINK.findall(prose(page.read_text(encoding="utf-8")))


def broken_links(page: Path) -> list[str]:
    broken = []
    for target in links(page):
        if EXTERNAL.match(target):
            continue
        path, _, anchor = target.partition("#")
        where = (page.parent / path).resolve() if path else page
        if not where.exists():
            broken.append(f"{page.name}: {target} (no such file)")
        elif anchor and where.suffix == ".md" and anchor not in anchors(where):
            broken.append(f"{page.name}: {target} (no such heading or id)")
    return broken


def test_every_relative_link_points_to_something_that_exists() -> None:
    broken = [line for page in PAGES for line in broken_links(page)]
    assert not broken, "broken links:\n" + "\n".join(broken)


def test_the_readme_documentation_section_lists_every_page() -> None:
    text = README.read_text(encoding="utf-8")
    assert "\n## Documentation\n" in text, "README.md has no '## Documentation' section"
    section = text.split("\n## Documentation\n", 1)[1].split("\n## ", 1)[0]
    listed = {Path(target.partition("#")[0]).name for target in LINK.findall(section)}
    missing = sorted(p.name for p in DOCS.glob("*.md") if p.name not in listed)
    assert not missing, f"docs pages missing from README's Documentation section: {missing}"


def test_every_alerts_runbook_exists() -> None:
    found = runbooks()
    assert found, "no alert in the rules"
    for alert, link in found.items():
        page, _, anchor = link.partition("#")
        assert anchor and anchor in anchors(ROOT / page), f"{alert}: no runbook at {link}"


# Quoted messages: each is a line "> `` <message> ``" of docs/troubleshooting.md (a code span
# in a quote, so that GitHub shows the `<...>` standing for what varies, and the message's own
# backticks). Every other character must be printed by opchain: the literal pieces of some string
# in src/opchain (f-strings, %-formats and str.format split at their placeholders, Rich's
# markup removed) or the name of one of its classes (exceptions are shown by their names).
PLACEHOLDER = re.compile(r"<[^<>]*>")
FORMAT = re.compile(r"%(?:\([^)]*\))?[-#0 +]*\d*(?:\.\d+)?[sdifrx]|\{[^{}]*\}")
MARKUP = re.compile(r"\[/?[a-z ]*\]")


QUOTE = re.compile(r"> `` (.+) ``")


def quoted_messages() -> list[str]:
    text = FENCE.sub("", (DOCS / "troubleshooting.md").read_text(encoding="utf-8"))
    quotes = [line for line in text.splitlines() if line.startswith(">")]
    odd = [line for line in quotes if not QUOTE.fullmatch(line)]
    assert not odd, f"quotes not in the form > `` message `` (so not checked): {odd}"
    return [QUOTE.fullmatch(line).group(1) for line in quotes]  # type: ignore[union-attr]


def _pieces(node: ast.AST) -> list[str] | None:
    """A string expression as its literal pieces, a placeholder between each two; None when
    ``node`` is no string."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return FORMAT.split(node.value)
    if isinstance(node, ast.JoinedStr):
        pieces = [""]
        for value in node.values:
            if isinstance(value, ast.Constant) and isinstance(value.value, str):
                pieces[-1] += value.value
            else:
                pieces.append("")
        return pieces
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        left, right = _pieces(node.left), _pieces(node.right)
        if left is None and right is None:
            return None
        left, right = left or ["", ""], right or ["", ""]
        return [*left[:-1], left[-1] + right[0], *right[1:]]
    return None


def source_templates() -> list[re.Pattern[str]]:
    """A pattern per string of src/opchain: each literal piece a group, ``.*?`` between."""
    found: set[tuple[str, ...]] = set()
    for module in sorted((ROOT / "src" / "opchain").rglob("*.py")):
        for node in ast.walk(ast.parse(module.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ClassDef):
                found.add((node.name,))
                continue
            pieces = _pieces(node)
            if pieces is not None:
                found.add(tuple(MARKUP.sub("", p) for p in pieces))
    return [
        re.compile(".*?".join(f"({re.escape(p)})" for p in pieces))
        for pieces in sorted(found)
        if max(len(p.strip()) for p in pieces) >= 6  # no "{}: {}": it would match anything
    ]


def uncovered(message: str, templates: list[re.Pattern[str]]) -> list[str]:
    """The parts of ``message`` with a letter or digit that no string of opchain prints."""
    covered = [False] * len(message)
    for match in PLACEHOLDER.finditer(message):
        covered[match.start() : match.end()] = [True] * (match.end() - match.start())
    for template in templates:
        for match in template.finditer(message):
            for group in range(1, (template.groups or 0) + 1):
                start, end = match.span(group)
                covered[start:end] = [True] * (end - start)
    left = "".join("\x00" if c else ch for c, ch in zip(covered, message, strict=True))
    parts = re.findall(r"[^\x00]+", left)
    return [p for p in parts if any(ch.isalnum() for ch in p)]


def test_troubleshooting_quotes_messages_opchain_prints() -> None:
    messages = quoted_messages()
    assert len(messages) >= 30, f"only {len(messages)} quoted messages found"
    templates = source_templates()
    wrong = {m: parts for m in messages if (parts := uncovered(m, templates))}
    assert not wrong, "quoted messages opchain does not print (parts not found in src):\n" + (
        "\n".join(f"{m}\n    not found: {parts}" for m, parts in wrong.items())
    )
