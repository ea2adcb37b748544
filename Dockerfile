FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 LITELLM_LOCAL_MODEL_COST_MAP=True
WORKDIR /app
COPY pyproject.toml README.md ./
COPY gateway ./gateway
RUN pip install --no-cache-dir .
COPY providers.yaml ./
# A dedicated numeric user (10001), so that Kubernetes' runAsNonRoot can check it without a passwd lookup;
# deploy/kubernetes/base/deployment.yaml runs as the same runAsUser/runAsGroup.
RUN groupadd --system --gid 10001 gateway \
 && useradd --system --uid 10001 --gid 10001 --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin gateway
# Without REDIS_URL, usage goes to the SQLite file usage.path (relative: the working directory):
# /data, writable by the user the gateway runs as; mount a volume there to keep it.
RUN mkdir /data && chown 10001:10001 /data
WORKDIR /data
EXPOSE 8000
USER 10001:10001
# /health/live: the process works (not /health, which is 503 while no provider can serve or while draining).
# python, not curl: the slim image has no curl.
HEALTHCHECK --interval=10s --timeout=3s --start-period=10s --retries=3 \
  CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/health/live', timeout=2)"]
CMD ["gateway", "serve", "--config", "/app/providers.yaml", "--host", "0.0.0.0", "--port", "8000"]
