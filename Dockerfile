# hedgekeeper's production image.
#   docker build -t hedgekeeper .
#   docker run --rm hedgekeeper                      # the offline demo (sim venue, dry-run)
#   docker compose -f deploy/docker-compose.yml up   # your configuration, secrets, state volume
# Operating it: docs/operations.md.

# -- build: install the package and its dependencies into a virtualenv ----------------------------
FROM python:3.11-slim AS build
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1
WORKDIR /src
# The dependencies first, in a layer of their own: a change to daemon/ or the README
# then rebuilds in seconds instead of downloading ccxt and the rest again.
COPY pyproject.toml ./
RUN python -m venv /opt/hedgekeeper \
    && /opt/hedgekeeper/bin/python -c "import tomllib; print(*tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies'], sep='\n')" > requirements.txt \
    && /opt/hedgekeeper/bin/pip install --no-cache-dir -r requirements.txt \
    && /opt/hedgekeeper/bin/python -m compileall -q /opt/hedgekeeper/lib
COPY README.md ./
COPY daemon ./daemon
# compileall again only writes what is new: the package's own bytecode.
RUN /opt/hedgekeeper/bin/pip install --no-cache-dir --no-deps . \
    && /opt/hedgekeeper/bin/python -m compileall -q /opt/hedgekeeper/lib

# -- run: the virtualenv, a non-root user, nothing else -------------------------------------------
FROM python:3.11-slim
# A fixed uid, so that host files handed in as secrets can be owned by it (chown 10001).
RUN groupadd --system --gid 10001 hedgekeeper \
    && useradd --system --uid 10001 --gid hedgekeeper --no-create-home \
        --home-dir /var/lib/hedgekeeper --shell /usr/sbin/nologin hedgekeeper \
    && install -d -o hedgekeeper -g hedgekeeper -m 0700 /var/lib/hedgekeeper
COPY --from=build /opt/hedgekeeper /opt/hedgekeeper
# The default configuration is the offline demo; mount yours over it (read-only).
COPY config/offline-demo.toml /etc/hedgekeeper/config.toml
ENV PATH="/opt/hedgekeeper/bin:${PATH}" \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    HEDGEKEEPER_CONFIG=/etc/hedgekeeper/config.toml \
    HEDGEKEEPER_STATE_DIR=/var/lib/hedgekeeper \
    HEDGEKEEPER_LOG__FORMAT=json
USER 10001:10001
WORKDIR /var/lib/hedgekeeper
# The journal (orders, fills, trading state, paper positions) must outlive the container.
VOLUME ["/var/lib/hedgekeeper"]
# Control channel and metrics; publish them on 127.0.0.1 only (see deploy/docker-compose.yml).
EXPOSE 8765 9108
# SIGTERM: finish the current step, cancel working orders, exit 0 within ~5 s.
STOPSIGNAL SIGTERM
# `hedgekeeper health` exits 0 healthy, 1 unhealthy, 2 unreachable; Docker reserves 2.
HEALTHCHECK --interval=30s --timeout=10s --start-period=60s --retries=3 \
    CMD ["/bin/sh", "-c", "hedgekeeper health || exit 1"]
ENTRYPOINT ["hedgekeeper"]
CMD ["run", "--config", "/etc/hedgekeeper/config.toml"]
