"""The pages' two catalogues at every tier (<tier>/web/i18n/en.json and ne.json, issue 15,
over common/web/i18n's words shared by the three), read as files, no browser: the same keys
in both, each Nepali text in Devanagari, the same placeholders; every key a page names, and
every error code the node sends (FIELD_CODES of municipal-node/field.h, and each code its C
sources give), has its words in both. A missing Nepali text would otherwise show in English,
unnoticed until a clerk, an officer or a ministry read it. (The hub's and the federal tier's
catalogues were checked by nothing until their calendar words moved to the common one.)"""
import glob
import json
import os
import re

import pytest

from harness import ROOT

TIERS = ("municipal-node", "provincial-hub", "federal-api")
WEB = os.path.join(ROOT, "municipal-node", "web")
# Texts that are the same in both languages: names, and the English button of the Nepali page.
SAME = {"lang.en", "v.programme.M4SD", "v.programme.RERP"}


def catalogue(lang, tier="municipal-node"):
    """A tier's catalogue over the one every tier's pages share (common/web/i18n), as
    common/web/i18n.js merges them."""
    with open(os.path.join(ROOT, "common", "web", "i18n", lang + ".json"),
              encoding="utf-8") as f:
        words = json.load(f)
    with open(os.path.join(ROOT, tier, "web", "i18n", lang + ".json"), encoding="utf-8") as f:
        words.update(json.load(f))
    return words


def sources(tier="municipal-node"):
    """The tier's scripts, and the shared ones (common/web) that they import, at any depth:
    the node's date field names words that the other tiers' pages never show."""
    todo = glob.glob(os.path.join(ROOT, tier, "web", "**", "*.js"), recursive=True)
    seen = set()
    while todo:
        path = todo.pop()
        if path in seen:
            continue
        seen.add(path)
        with open(path, encoding="utf-8") as f:
            text = f.read()
        todo += [os.path.join(ROOT, "common", "web", name)
                 for name in re.findall(r'from "(?:/common|\.)/(\w+\.js)"', text)
                 if path.startswith(os.path.join(ROOT, "common")) or
                 '"/common/%s"' % name in text]
        yield path, text


def field_codes():
    with open(os.path.join(ROOT, "municipal-node", "field.h")) as f:
        text = f.read()
    m = re.search(r"#define FIELD_CODES((?:.*\\\n)*.*)", text)
    return re.findall(r'"(\w+)"', m.group(1))


@pytest.mark.parametrize("tier", TIERS)
def test_both_catalogues_have_the_same_keys_and_placeholders(tier):
    en, ne = catalogue("en", tier), catalogue("ne", tier)
    assert len(en) > 150
    assert set(en) - set(ne) == set(), "no Nepali text"
    assert set(ne) - set(en) == set(), "no English text"
    for k in en:
        assert en[k].strip() and ne[k].strip(), k
        assert (sorted(re.findall(r"\{\w+\}", en[k])) ==
                sorted(re.findall(r"\{\w+\}", ne[k]))), (k, en[k], ne[k])
        # A text with words ("{name} ({code}): {value}" and "–" have none) is in Devanagari.
        if k not in SAME and re.search("[A-Za-z]", re.sub(r"\{\w+\}", "", en[k])):
            assert re.search("[\u0900-\u097f]", ne[k]), ("not in Devanagari", k, ne[k])


@pytest.mark.parametrize("tier", TIERS)
def test_every_key_a_page_names_is_in_the_catalogue(tier):
    en = catalogue("en", tier)
    named, prefixes = set(), set()
    for path, text in sources(tier):
        named |= {(path, k) for k in re.findall(r'\bt\("([\w.]+)"', text)}
        prefixes |= {(path, p) for p in re.findall(r"\bt\(`([\w.]+)\$\{", text)}
    assert len(named) > 60
    assert [x for x in named if x[1] not in en] == []
    # A key built from a value (kind.${kind}) has at least its family in the catalogue.
    assert [x for x in prefixes if not any(k.startswith(x[1]) for k in en)] == []


def test_every_error_code_of_the_node_is_said_in_both_languages():
    codes = field_codes()
    assert "date_invalid" in codes and len(codes) > 15
    for lang in ("en", "ne"):
        c = catalogue(lang)
        assert [k for k in codes if "err." + k not in c] == [], lang
    # And the C sources give no code that the list (and so the catalogues) lacks.
    given = set()
    for path in glob.glob(os.path.join(ROOT, "municipal-node", "*.c")):
        with open(path) as f:
            # The third argument: field_errors_add_code(errs, field, "code", ...).
            given |= set(re.findall(r'field_errors_add_code\(\s*[^,()]+,\s*(?:"[^"]*"|[^,"]+),'
                                    r'\s*"(\w+)"', f.read()))
    assert given, "no field_errors_add_code call found"
    assert given - set(codes) == set()
