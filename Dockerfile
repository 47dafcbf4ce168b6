# Production image: the HTTP server only. The store is a real MongoDB (see docker-compose.yml),
# so neither Go nor the embedded FerretDB is needed here.

FROM python:3.11-slim AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
RUN python -m venv /opt/venv
WORKDIR /src
COPY . .
RUN /opt/venv/bin/pip install .

FROM python:3.11-slim
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    INTEROP_HTTP_HOST=0.0.0.0 \
    INTEROP_HTTP_PORT=8080 \
    INTEROP_DATA_DIR=/data \
    INTEROP_HTTP_WORKERS=2
RUN useradd --system --uid 10001 --home-dir /data --create-home interop
COPY --from=build /opt/venv /opt/venv
USER interop
WORKDIR /data
EXPOSE 8080
HEALTHCHECK --interval=15s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8080/healthz', timeout=4)"]
# Repair writes a crash interrupted, then serve. Worker class, threads and timeouts come from
# fhir_server/gunicorn_conf.py; exec keeps gunicorn PID 1.
CMD ["sh", "-c", "interop recover && exec gunicorn 'fhir_server:create_app()' --bind 0.0.0.0:8080 --workers \"${INTEROP_HTTP_WORKERS:-2}\" --config python:fhir_server.gunicorn_conf"]
