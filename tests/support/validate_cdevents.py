#!/usr/bin/env python3
"""Validates CDEvents against the official CDEvents v0.5.1 JSON Schemas.

usage: validate_cdevents.py --schemas DIR [FILE]

Reads one CDEvent (a JSON object with context and subject) per line from FILE,
or from stdin; blank lines are skipped. The schema of an event is the one
whose context.type enum holds the event's exact type string. Formats are
checked too (date-time, uri, uri-reference), which jsonschema does not do by
default.

Prints one line per event: "line N: ok TYPE" or "line N: INVALID TYPE: MESSAGE
at PATH". Exit status: 0 when every event is valid, 1 when one is not, 2 when
the schemas cannot be loaded or the input is not JSON.
"""

import argparse
import json
import pathlib
import re
import sys
import urllib.parse

from jsonschema import Draft202012Validator, FormatChecker
from referencing import Registry, Resource

# RFC 3986: scheme ":" hier-part, no spaces or characters outside the URI set.
_URI_CHARS = re.compile(r"^[A-Za-z0-9\-._~:/?#\[\]@!$&'()*+,;=%]*$")
_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.\-]*$")
_PERCENT = re.compile(r"%(?![0-9A-Fa-f]{2})")


def _uri_reference(value):
    if not isinstance(value, str):
        return True
    return bool(_URI_CHARS.match(value)) and not _PERCENT.search(value)


def _uri(value):
    if not isinstance(value, str):
        return True
    if not _uri_reference(value):
        return False
    scheme = urllib.parse.urlsplit(value).scheme
    return bool(scheme) and bool(_SCHEME.match(scheme)) and len(value) > len(scheme) + 1


def format_checker():
    checker = FormatChecker()  # date-time through rfc3339-validator when installed
    checker.checks("uri")(_uri)
    checker.checks("uri-reference")(_uri_reference)
    if "date-time" not in checker.checkers:
        sys.exit("validate_cdevents: no date-time checker (python3-rfc3339-validator missing)")
    return checker


def load_schemas(directory):
    resources = []
    by_type = {}
    for path in sorted(pathlib.Path(directory).rglob("*.json")):
        schema = json.loads(path.read_text())
        resources.append((schema["$id"], Resource.from_contents(schema)))
        enum = schema.get("properties", {}).get("context", {}).get("properties", {}).get("type", {}).get("enum", [])
        for event_type in enum:
            by_type[event_type] = schema
    return Registry().with_resources(resources), by_type


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--schemas", required=True)
    parser.add_argument("file", nargs="?")
    args = parser.parse_args()
    try:
        registry, by_type = load_schemas(args.schemas)
    except (OSError, ValueError, KeyError) as e:
        print(f"cannot load the schemas in {args.schemas}: {e}", file=sys.stderr)
        return 2
    if not by_type:
        print(f"no CDEvents schemas in {args.schemas}", file=sys.stderr)
        return 2
    checker = format_checker()
    text = pathlib.Path(args.file).read_text() if args.file else sys.stdin.read()
    invalid = 0
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            event = json.loads(line)
        except ValueError as e:
            print(f"line {number}: not JSON: {e}", file=sys.stderr)
            return 2
        event_type = event.get("context", {}).get("type") if isinstance(event, dict) else None
        schema = by_type.get(event_type)
        if schema is None:
            print(f"line {number}: INVALID {event_type}: no schema for this type")
            invalid += 1
            continue
        validator = Draft202012Validator(schema, registry=registry, format_checker=checker)
        errors = sorted(validator.iter_errors(event), key=lambda e: list(e.absolute_path))
        if errors:
            invalid += 1
            for error in errors:
                path = "/" + "/".join(str(p) for p in error.absolute_path)
                print(f"line {number}: INVALID {event_type}: {error.message} at {path}")
        else:
            print(f"line {number}: ok {event_type}")
    return 1 if invalid else 0


if __name__ == "__main__":
    sys.exit(main())
