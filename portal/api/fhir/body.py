"""Request bodies and content negotiation: JSON only, refused early when too deep or too big to be a referral.

A body is scanned before it is parsed: Python's JSON parser recurses once per nesting level, so 1,000
levels (a 2 KB body) used to end in a RecursionError and a 500, and a body of a million tiny values costs
far more memory than its bytes suggest. The scan removes string contents with one regular expression (C
speed: a 30 MB body is mostly base64 attachment text) and counts what is left.
"""

import json
import re

from werkzeug.datastructures import MIMEAccept

from portal.api.fhir import FHIR_JSON, FhirError

# A referral Bundle nests about 10 levels (Bundle.entry.resource.reasonCode.coding); a QuestionnaireResponse's
# groups two more each (item.answer.item...); 64 leaves room for any real one and far from Python's recursion limit.
MAX_DEPTH = 64
# Objects and arrays, and values (counted by their separators), outside strings. A generous referral with
# ten attachments and a long questionnaire has a few thousand.
MAX_CONTAINERS = 20_000
MAX_VALUES = 100_000

_STRING = re.compile(rb'"(?:[^"\\]|\\.)*"', re.DOTALL)
_NOT_BRACKETS = bytes(c for c in range(256) if c not in b"[]{}")

# Media types whose body is FHIR JSON (R4 application/fhir+json; clients also send plain JSON, and DSTU2's name).
JSON_TYPES = (FHIR_JSON, "application/json", "application/json+fhir")
# _format values that mean JSON (http://hl7.org/fhir/R4/http.html#mime-type).
JSON_FORMATS = {"json", "application/json", "application/fhir+json", "application/json+fhir"}


def too_complex(raw: bytes) -> str | None:
    """Why the body is refused before parsing (naming the limit, never the content), or None."""
    skeleton = _STRING.sub(b'""', raw)
    brackets = skeleton.translate(None, _NOT_BRACKETS)
    if len(brackets) > 2 * MAX_CONTAINERS:
        return f"The body holds more than {MAX_CONTAINERS} JSON objects and arrays."
    if skeleton.count(b",") + skeleton.count(b":") > 2 * MAX_VALUES:
        return f"The body holds more than {MAX_VALUES} JSON values."
    depth = deepest = 0
    for byte in brackets:
        if byte in b"[{":
            depth += 1
            if depth > deepest:
                deepest = depth
                if deepest > MAX_DEPTH:
                    return f"The body nests JSON deeper than {MAX_DEPTH} levels."
        else:
            depth -= 1
    return None


def parse_json(raw: bytes):
    """The body as JSON, or a 400 OperationOutcome (too deep, too many elements, not JSON)."""
    problem = too_complex(raw)
    if problem:
        raise FhirError(400, problem, "too-costly")
    try:
        return json.loads(raw or b"null")
    except (ValueError, UnicodeDecodeError, RecursionError):
        raise FhirError(400, "The body is not valid JSON.", "structure") from None


def json_acceptable(accept: MIMEAccept) -> bool:
    """Whether an Accept header lets us answer with FHIR JSON (no header at all accepts anything)."""
    if not accept:
        return True
    return accept.best_match([FHIR_JSON, "application/json", "application/json+fhir"]) is not None


def json_format(value: str | None) -> bool:
    return value is None or value == "" or value.split(";")[0].strip().lower() in JSON_FORMATS
