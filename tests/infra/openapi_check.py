#!/usr/bin/env python3
"""Check recorded HTTP answers against docs/openapi.yaml.

    openapi_check.py SPEC RECORDS [--coverage]

RECORDS holds one JSON object per line, as tests/integration/test_api.sh's
`api` function writes them: {"method", "path" (without the query), "status",
"type" (the Content-Type), "body" (a file holding the body)}.  Each answer
must be documented: its path and method, its status code, its media type,
and its body must match the schema (types, required members, nullable,
enums, items, and no member the schema does not name).  A path the spec
does not have must answer 404 with the documented error.  With --coverage,
every route of the spec must have been called at least once.

Prints one line per problem and a summary; exit status 1 if any.
"""
import json
import re
import sys

import yaml


class Spec:
    def __init__(self, path):
        with open(path) as f:
            self.doc = yaml.safe_load(f)
        self.routes = []
        for template, item in self.doc["paths"].items():
            parts = template.strip("/").split("/") if template != "/" else []
            self.routes.append((template, parts, item))

    def ref(self, node):
        while isinstance(node, dict) and "$ref" in node:
            target = self.doc
            for key in node["$ref"].lstrip("#/").split("/"):
                target = target[key]
            node = target
        return node

    def route(self, path):
        """The template matching path, preferring literal segments."""
        segs = [s for s in path.split("/") if s]
        best = None
        for template, parts, item in self.routes:
            if len(parts) != len(segs):
                continue
            literal = 0
            for p, s in zip(parts, segs):
                if p.startswith("{"):
                    continue
                if p != s:
                    break
                literal += 1
            else:
                if best is None or literal > best[0]:
                    best = (literal, template, item)
        return (best[1], best[2]) if best else (None, None)


def type_ok(value, t):
    if t == "integer":
        return isinstance(value, int) and not isinstance(value, bool)
    if t == "number":
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if t == "string":
        return isinstance(value, str)
    if t == "boolean":
        return isinstance(value, bool)
    if t == "array":
        return isinstance(value, list)
    if t == "object":
        return isinstance(value, dict)
    return True


DATE_TIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)$")


def flatten(spec, schema):
    """allOf merged into one schema (properties, required)."""
    schema = spec.ref(schema)
    if "allOf" not in schema:
        return schema
    merged = {"type": "object", "properties": {}, "required": []}
    for part in schema["allOf"]:
        part = flatten(spec, part)
        merged["properties"].update(part.get("properties", {}))
        merged["required"] += part.get("required", [])
        if part.get("nullable"):
            merged["nullable"] = True
    return merged


def validate(spec, schema, value, where, problems):
    schema = flatten(spec, schema)
    if value is None:
        if not schema.get("nullable") and schema != {}:
            problems.append("%s: null, not documented as nullable" % where)
        return
    if "oneOf" in schema:
        for option in schema["oneOf"]:
            sub = []
            validate(spec, option, value, where, sub)
            if not sub:
                return
        problems.append("%s: matches none of oneOf" % where)
        return
    t = schema.get("type")
    if t is None and "properties" in schema:
        t = "object"
    if t and not type_ok(value, t):
        problems.append("%s: %s is not of type %s" % (where, json.dumps(value)[:60], t))
        return
    if "enum" in schema and value not in schema["enum"]:
        problems.append("%s: %r is not one of %s" % (where, value, schema["enum"]))
    if t == "string" and schema.get("format") == "date-time" and not DATE_TIME.match(value):
        problems.append("%s: %r is not an RFC 3339 time" % (where, value))
    if t == "array":
        items = schema.get("items", {})
        for i, v in enumerate(value):
            validate(spec, items, v, "%s[%d]" % (where, i), problems)
    if t == "object":
        props = schema.get("properties", {})
        for name in schema.get("required", []):
            if name not in value:
                problems.append("%s: required member %s missing" % (where, name))
        extra = schema.get("additionalProperties")
        for name, v in value.items():
            if name in props:
                validate(spec, props[name], v, "%s.%s" % (where, name), problems)
            elif isinstance(extra, dict):
                validate(spec, extra, v, "%s.%s" % (where, name), problems)
            elif props and extra is not True:
                problems.append("%s: member %s is not documented" % (where, name))


def check_record(spec, rec, problems, called):
    where = "%s %s -> %s" % (rec["method"], rec["path"], rec["status"])
    template, item = spec.route(rec["path"])
    if template is None:
        # A path the API does not have: 404 with the documented error.
        if rec["status"] != 404:
            problems.append("%s: path not in the spec, and not 404" % where)
            return
        with open(rec["body"]) as f:
            validate(spec, {"$ref": "#/components/schemas/Error"}, json.load(f), where,
                     problems)
        return
    op = item.get(rec["method"].lower())
    if op is None:
        problems.append("%s: method not in the spec for %s" % (where, template))
        return
    called.add((template, rec["method"].upper()))
    responses = spec.ref(op.get("responses", {}))
    resp = responses.get(str(rec["status"])) or responses.get("default")
    if resp is None:
        problems.append("%s: status %s not documented (%s)" %
                        (where, rec["status"], ", ".join(sorted(responses))))
        return
    resp = spec.ref(resp)
    content = resp.get("content")
    if not content:
        return
    media = (rec.get("type") or "").split(";")[0].strip()
    if media not in content:
        problems.append("%s: media type %r not documented (%s)" %
                        (where, media, ", ".join(content)))
        return
    with open(rec["body"], "rb") as f:
        raw = f.read()
    schema = content[media].get("schema", {})
    if media == "application/json":
        try:
            body = json.loads(raw)
        except ValueError as e:
            problems.append("%s: body is not JSON: %s" % (where, e))
            return
        validate(spec, schema, body, where, problems)
    else:
        try:
            raw.decode("utf-8")
        except UnicodeDecodeError:
            problems.append("%s: body is not UTF-8 text" % where)


def main():
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    coverage = "--coverage" in sys.argv
    if len(args) != 2:
        sys.exit(__doc__)
    spec = Spec(args[0])
    problems, called, count = [], set(), 0
    with open(args[1]) as f:
        for line in f:
            if line.strip():
                count += 1
                check_record(spec, json.loads(line), problems, called)
    if coverage:
        for template, _, item in spec.routes:
            for method in ("get", "post", "put", "patch", "delete"):
                if method in item and (template, method.upper()) not in called:
                    problems.append("%s %s: never called" % (method.upper(), template))
    for p in problems:
        print(p)
    print("%d answers checked against %d routes, %d problems" %
          (count, len(called), len(problems)))
    sys.exit(1 if problems else 0)


if __name__ == "__main__":
    main()
