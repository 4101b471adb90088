"""The enrolment QR code, drawn here as SVG: the secret never goes to a QR web service."""

import segno


def svg_data_uri(text: str) -> str:
    """A data: URI for an <img>; the page CSP allows data: images but no inline styles."""
    return segno.make(text, error="m").svg_data_uri(scale=5, border=4, dark="#000", light="#fff")
