"""The bare baseline: a Flask app whose webhook endpoint only answers 202.

Served by gunicorn with exactly the Procfile's web settings, it measures what
the stack (gunicorn gthread, Werkzeug, Flask routing, JSON response) costs with
no verification, no parsing, no ledger and no queue, so Hookflow's ingest
throughput can be reported as a fraction of it.
"""

from __future__ import annotations

from flask import Flask, Response, jsonify

app = Flask(__name__)


@app.post("/hooks/<source>")
def accept(source: str) -> tuple[Response, int]:
    return jsonify(accepted=True), 202
