# The scheduler daemon: `docker build -t solidarity .` (see docs/deploy.md).
FROM python:3.12-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

# A dedicated user; the ledger's folder is its only writable place, made before
# the VOLUME line so that a fresh named volume starts owned by that user.
RUN groupadd --system solidarity \
    && useradd --system --gid solidarity --home-dir /srv/solidarity --no-create-home \
        --shell /usr/sbin/nologin solidarity \
    && install -d -o solidarity -g solidarity -m 0750 /var/lib/solidarity

# Install the package from this copy of the repository (README.md is its readme).
WORKDIR /tmp/build
COPY pyproject.toml README.md ./
COPY scheduler ./scheduler
RUN pip install . && rm -rf /tmp/build

# The organisation's files, read-only to the daemon: bake the examples in, or
# mount your own over them (-v $PWD/campaigns:/srv/solidarity/campaigns:ro).
# Secrets never go in the image: pass them with --env-file .env.
WORKDIR /srv/solidarity
COPY campaigns ./campaigns
COPY templates ./templates
COPY accounts.yaml ./accounts.yaml

ENV SOLIDARITY_CAMPAIGNS=/srv/solidarity/campaigns \
    SOLIDARITY_TEMPLATES=/srv/solidarity/templates \
    SOLIDARITY_ACCOUNTS=/srv/solidarity/accounts.yaml \
    SOLIDARITY_DATABASE_URL=sqlite:////var/lib/solidarity/solidarity.db
VOLUME /var/lib/solidarity

USER solidarity
# `docker stop` sends SIGTERM; `docker kill -s HUP solidarity` makes the daemon re-read its files
STOPSIGNAL SIGTERM
ENTRYPOINT ["solidarity"]
CMD ["run"]
