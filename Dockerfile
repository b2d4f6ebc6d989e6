# Multi-stage build: dependencies are built in a throw-away stage, the runtime
# image holds only the virtualenv and runs as an unprivileged user.

FROM python:3.11-slim AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
# The hash-pinned lock first (its layer is cached until the lock changes), then the
# project itself without resolving anything: the image ships exactly what CI tested.
COPY requirements.lock ./
RUN pip install --require-hashes -r requirements.lock
COPY pyproject.toml README.md LICENSE ./
COPY gateway ./gateway
COPY sessions ./sessions
RUN pip install --no-deps . && pip check

FROM python:3.11-slim AS runtime
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    GATEWAY_HOST=0.0.0.0 \
    GATEWAY_PORT=8000 \
    GATEWAY_LOG_FORMAT=json \
    GATEWAY_ADDRESS_FILE=/tmp/chat-gateway.address
RUN groupadd --system gateway && useradd --system --gid gateway --no-create-home gateway
COPY --from=build /opt/venv /opt/venv
USER gateway
EXPOSE 8000
# SIGTERM starts a graceful drain (readiness 503, sockets told, in-flight answers finish).
STOPSIGNAL SIGTERM
# The server writes the URL it really serves to GATEWAY_ADDRESS_FILE once listening,
# so the probe follows `serve --port 9000`, a config file's port or GATEWAY_PORT alike.
HEALTHCHECK --interval=10s --timeout=3s CMD ["chat-gateway", "health"]
ENTRYPOINT ["chat-gateway"]
CMD ["serve"]
