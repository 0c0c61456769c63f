"""The baseline for ``bench/ingest.py``: a bare Flask route where callwatch's callback route is.

``POST /twilio/status-callback`` reads the form (so the body is parsed as the real
route parses it) and answers 204; nothing is verified or stored. gunicorn serves
it with the same config file and environment as callwatch, so the difference
between the two is what callwatch's own work costs.
"""

from __future__ import annotations

from flask import Flask, Response, request


def create_app() -> Flask:
    """The bare app: the callback route and ``/healthz``, nothing else."""
    app = Flask(__name__)

    @app.post("/twilio/status-callback")
    def status_callback() -> Response:
        request.form  # noqa: B018 - parse the body like the real route does
        return Response(status=204)

    @app.get("/healthz")
    def healthz() -> Response:
        return Response("ok", mimetype="text/plain")

    return app


app = create_app()
