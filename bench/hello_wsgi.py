"""The baseline of bench/bench_pages.py: the smallest Flask app, served by gunicorn as the portal is."""

from flask import Flask

app = Flask(__name__)


@app.get("/")
def hello() -> str:
    return "Hello, World!"
