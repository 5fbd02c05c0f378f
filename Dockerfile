# Image for every VPA service: `vpa run detector|reminders|journey|notifier|dashlet` (see docker-compose.yml).
#   docker build -t vpa-dashlet:local .
#   docker run --rm vpa-dashlet:local --help
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /src
# only what the package needs (README.md is optional: the bracket glob may match nothing)
COPY pyproject.toml README.m[d] ./
COPY schemas ./schemas
COPY services ./services
RUN pip install . \
 && useradd --create-home --uid 10001 vpa \
 && mkdir -p /var/lib/vpa/state && chown vpa /var/lib/vpa/state \
 && rm -rf /src

# the stream services keep the RocksDB copy of their state in VPA_STATE_DIR (a volume in compose)
USER vpa
WORKDIR /home/vpa

# metrics (detector 9101, reminders 9102, journey 9103, notifier 9104) and the dashlet (8080)
EXPOSE 9101 9102 9103 9104 8080

ENTRYPOINT ["vpa"]
CMD ["--help"]
