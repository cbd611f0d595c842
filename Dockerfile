# Image of the consent ledger for docker-compose.yml: one image, every process (serve, ...).
FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml constraints.txt README.md ./
COPY schemas ./schemas
COPY ledger ./ledger
COPY relay ./relay
COPY access ./access
COPY consumers ./consumers
COPY projections ./projections
COPY entrypoints ./entrypoints
RUN pip install --no-cache-dir -c constraints.txt . \
    && useradd --system --home /app ledger
USER ledger
ENV CONSENT_MODE=production
EXPOSE 8000
ENTRYPOINT ["consent-ledger"]
CMD ["serve", "--host", "0.0.0.0", "--port", "8000"]
