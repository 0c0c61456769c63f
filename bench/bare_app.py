"""The baselines for the ingestion benchmarks: a bare Flask route where callwatch's callback
route is.

``app``: ``POST /twilio/status-callback`` reads the form (so the body is parsed as a
Flask route usually parses it) and answers 204; nothing is verified or stored.
``app_no_form`` answers 204 without touching the body: the strictest baseline, the
cost of Flask and gunicorn alone. gunicorn serves either with the same config file
and environment as callwatch, so the difference between the two is what
callwatch's own work costs.
"""

from __future__ import annotations

from flask import Flask, Response, request


def create_app(*, parse_form: bool = True) -> Flask:
    """The bare app: the callback route and ``/healthz``, nothing else."""
    app = Flask(__name__)

    @app.post("/twilio/status-callback")
    def status_callback() -> Response:
        if parse_form:
            request.form  # noqa: B018 - parse the body like a Flask route does
        return Response(status=204)

    @app.get("/healthz")
    def healthz() -> Response:
        return Response("ok", mimetype="text/plain")

    return app


app = create_app()
app_no_form = create_app(parse_form=False)
