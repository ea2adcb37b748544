FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 LITELLM_LOCAL_MODEL_COST_MAP=True
WORKDIR /app
COPY pyproject.toml README.md ./
COPY gateway ./gateway
RUN pip install --no-cache-dir .
COPY providers.yaml ./
# Without REDIS_URL, usage goes to the SQLite file usage.path (relative: the working directory):
# /data, writable by the user the gateway runs as; mount a volume there to keep it.
RUN mkdir /data && chown nobody:nogroup /data
WORKDIR /data
EXPOSE 8000
USER nobody
CMD ["gateway", "serve", "--config", "/app/providers.yaml", "--host", "0.0.0.0", "--port", "8000"]
