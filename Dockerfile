# Multi-stage build: the web demo is built in a Node stage, the Python dependencies in
# another throw-away stage; the runtime image holds only the virtualenv and the built
# page, and runs as an unprivileged user. (No Docker engine runs in this project's CI:
# tests/test_dockerfile.py checks the stages and runs the commands they rely on.)

# The web demo (web-demo/, React + Vite): the same `npm ci` + `npm run build` as
# `make web-build`, from the committed package-lock.json. Vite needs Node >= 20.19.
FROM node:20-slim AS web
WORKDIR /src/web-demo
COPY web-demo/package.json web-demo/package-lock.json ./
RUN npm ci --no-audit --no-fund --loglevel=error
COPY web-demo ./
# The build's type check covers web-demo/test too (tsconfig.json includes it).
RUN npm run build

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
    GATEWAY_ADDRESS_FILE=/tmp/chat-gateway.address \
    GATEWAY_WEB_DEMO_DIR=/opt/web-demo
RUN groupadd --system gateway && useradd --system --gid gateway --no-create-home gateway
COPY --from=build /opt/venv /opt/venv
# Installed, the package is no longer next to web-demo/dist (its default place in a
# checkout): GATEWAY_WEB_DEMO_DIR above names where the page is, served at /.
COPY --from=web /src/web-demo/dist /opt/web-demo
USER gateway
EXPOSE 8000
# SIGTERM starts a graceful drain (readiness 503, sockets told, in-flight answers finish).
STOPSIGNAL SIGTERM
# The server writes the URL it really serves to GATEWAY_ADDRESS_FILE once listening,
# so the probe follows `serve --port 9000`, a config file's port or GATEWAY_PORT alike.
HEALTHCHECK --interval=10s --timeout=3s CMD ["chat-gateway", "health"]
ENTRYPOINT ["chat-gateway"]
CMD ["serve"]
