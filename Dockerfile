# meshrules: the controller (default command) and the other commands, in one image.
# Build from the repository root: `docker build -t meshrules .` (not built in CI here: no Docker engine).
FROM python:3.11-slim AS build
WORKDIR /src
# rules/ and simulator/ are data the wheel carries inside the package (see pyproject.toml).
COPY pyproject.toml README.md ./
COPY meshrules ./meshrules
COPY rules ./rules
COPY simulator ./simulator
RUN pip install --no-cache-dir --prefix=/install .

FROM python:3.11-slim
COPY --from=build /install /usr/local
# The same non-root user the manifests in deploy/ run as (runAsUser: 65532).
USER 65532:65532
ENV PYTHONUNBUFFERED=1
EXPOSE 8080
ENTRYPOINT ["meshrules"]
CMD ["controller", "--health-address", "0.0.0.0:8080"]
