FROM python:3.11-slim
RUN useradd --create-home --uid 10001 gateway && mkdir /data && chown gateway /data
WORKDIR /app
COPY setup.cfg README.md gateway.py ./
COPY kimi ./kimi
RUN pip install --no-cache-dir ".[fast]"
USER gateway
ENV HOST=0.0.0.0 PORT=8000 STORE_PATH=/data/kimi-gateway.sqlite3
VOLUME ["/data"]
EXPOSE 8000
CMD ["python", "gateway.py"]
