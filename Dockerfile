# Images of the forwarder and of the mock SOAR, for people with Docker.
# Without Docker, `make images` builds the same images in-process.
#
#   docker build --target forwarder   -t ghcr.io/falco-phantom/falco-phantom-forwarder:0.1.0 .
#   docker build --target mockphantom -t ghcr.io/falco-phantom/mockphantom:0.1.0 .
#
# Base images are pinned by version; pin them by digest in your own pipeline.

FROM golang:1.26.8-bookworm AS build
ARG VERSION=dev
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 go build -trimpath \
      -ldflags "-s -w -X github.com/falco-phantom/kubectl-falco-phantom/pkg/version.Version=${VERSION}" \
      -o /out/ ./cmd/falco-phantom-forwarder ./mockphantom/cmd/mockphantom \
 && mkdir -p /out/data

FROM gcr.io/distroless/static-debian12:nonroot AS forwarder
COPY --from=build /out/falco-phantom-forwarder /usr/local/bin/falco-phantom-forwarder
USER 65532:65532
EXPOSE 8081
ENTRYPOINT ["/usr/local/bin/falco-phantom-forwarder"]

FROM gcr.io/distroless/static-debian12:nonroot AS mockphantom
COPY --from=build /out/mockphantom /usr/local/bin/mockphantom
COPY --from=build --chown=65532:65532 /out/data /data
USER 65532:65532
EXPOSE 8080
VOLUME /data
ENTRYPOINT ["/usr/local/bin/mockphantom"]
CMD ["--listen=:8080", "--db=/data/soar.db"]
