# The rig image: Python, accord-rig (client, fake server, chaos layer, scenarios,
# Locust load) and the Toxiproxy server. docker-compose.yml runs it in every role.
#
#   docker build -t accord-rig .                      # the usual public base images
#   scripts/stack build                               # this machine: local base images
#
# BASE_IMAGE: any Debian-like image with python3 (>= 3.11) and its venv module.
# TOXIPROXY_IMAGE: an image holding the Toxiproxy v2.12.0 server at /toxiproxy
# (the official image does; scripts/stack imports the one scripts/setup built).
# EXTRA_CA_PEM: PEM certificates pip must trust during the build only (a TLS
# proxy in front of PyPI); they do not reach the final image.
ARG BASE_IMAGE=python:3.11-slim
ARG TOXIPROXY_IMAGE=ghcr.io/shopify/toxiproxy:2.12.0

FROM ${TOXIPROXY_IMAGE} AS toxiproxy

FROM ${BASE_IMAGE} AS build
ARG EXTRA_CA_PEM=""
# The build stage only: the final image has neither this setting nor the CA file.
ENV PIP_CERT=/tmp/pip-ca.pem PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
RUN python3 -m venv /opt/accord-rig
WORKDIR /src
# Dependencies first (a layer that survives source and doc edits), then the
# project. The README is only the package's long description: an empty one will do.
COPY pyproject.toml ./
RUN set -eu; \
    touch README.md; \
    cat /etc/ssl/certs/ca-certificates.crt > /tmp/pip-ca.pem; \
    if [ -n "$EXTRA_CA_PEM" ]; then printf '%s\n' "$EXTRA_CA_PEM" >> /tmp/pip-ca.pem; fi; \
    mkdir -p client fake_server chaos scenarios reports load conform sim; \
    /opt/accord-rig/bin/pip install -q '.[rig,load,docker]'; \
    /opt/accord-rig/bin/pip uninstall -q -y accord-rig
COPY client client
COPY fake_server fake_server
COPY chaos chaos
COPY scenarios scenarios
COPY reports reports
COPY load load
COPY conform conform
COPY sim sim
RUN /opt/accord-rig/bin/pip install -q --no-deps .

FROM ${BASE_IMAGE}
COPY --from=toxiproxy /toxiproxy /usr/local/bin/toxiproxy-server
COPY --from=build /opt/accord-rig /opt/accord-rig
# Non-root; /runs is the work volume the rig shares with the fake-server
# containers it starts (databases, CA files, histories), writable by any uid.
RUN groupadd --gid 10001 rig && useradd --uid 10001 --gid rig --no-create-home rig \
    && mkdir -p /runs /app/out && chmod 1777 /runs /app/out
WORKDIR /app
COPY pyproject.toml ./
COPY scenarios scenarios
COPY load load
ENV PATH=/opt/accord-rig/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    MPLCONFIGDIR=/tmp/matplotlib \
    TOXIPROXY_SERVER=/usr/local/bin/toxiproxy-server
USER rig
CMD ["accord-rig", "run", "scenarios/starter"]
