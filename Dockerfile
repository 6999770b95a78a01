FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md constraints.txt ./
COPY ledger ./ledger
COPY projections ./projections
COPY api ./api
COPY executor ./executor
COPY cli ./cli
COPY runledger ./runledger
RUN pip install --no-cache-dir -c constraints.txt .
USER nobody
EXPOSE 8000
CMD ["runledger", "serve", "--host", "0.0.0.0"]
