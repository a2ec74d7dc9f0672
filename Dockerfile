# syntax=docker/dockerfile:1
# clade-gateway: a static binary on distroless, running as nonroot.
#
#   docker build -t clade-gateway:dev --build-arg VERSION=$(git describe --always) .
#
# Pin both images by digest in production (`docker buildx imagetools
# inspect <image>` prints it) so a rebuilt tag cannot change what ships.

FROM --platform=$BUILDPLATFORM golang:1.26.8 AS build
WORKDIR /src

# Modules first: this layer is reused until go.mod or go.sum change.
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod go mod download

COPY . .
ARG TARGETOS TARGETARCH
ARG VERSION=dev
RUN --mount=type=cache,target=/go/pkg/mod --mount=type=cache,target=/root/.cache/go-build \
    CGO_ENABLED=0 GOOS=$TARGETOS GOARCH=$TARGETARCH \
    go build -trimpath \
      -ldflags="-s -w -X github.com/clade-gateway/clade-gateway/internal/app.Version=${VERSION}" \
      -o /out/clade-gateway ./cmd/clade-gateway \
 && mkdir -p /out/data

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/clade-gateway /clade-gateway
# The data directory (embedded store, settlement journal) must be writable
# by nonroot (65532); a volume mounted here starts with this ownership.
COPY --from=build --chown=65532:65532 /out/data /data
# The binary listens on loopback by default; in a container the API must
# be reachable through the published port.
ENV CLADE_LISTEN=:8080 \
    CLADE_DATA_DIR=/data \
    CLADE_CONFIG=/etc/clade
USER nonroot:nonroot
EXPOSE 8080 9090
ENTRYPOINT ["/clade-gateway"]
